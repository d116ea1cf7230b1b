"""``cost``, ``verify`` and ``infer`` load a model or checkpoint the same way, with the same
one-line errors and exit code."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from artemis_core.cli import main
from artemis_core.cli.options import choose_model
from artemis_core.learning.checkpoint import Checkpoint, save
from artemis_core.learning.zoo import build_model


@pytest.fixture(scope="module")
def he_cnn_checkpoint(tmp_path_factory):
    model = build_model("he-cnn", 10, (1, 8, 8), seed=3)
    path = tmp_path_factory.mktemp("ckpt") / "he-cnn.pt"
    save(Checkpoint.from_model(model, model="he-cnn", dataset="digits", num_classes=10,
                               input_shape=(1, 8, 8)), path)
    return path, model


def test_a_checkpoint_gives_its_model_weights_and_dataset(he_cnn_checkpoint):
    path, original = he_cnn_checkpoint
    chosen = choose_model(None, path)
    assert (chosen.name, chosen.input_shape, chosen.dataset) == ("he-cnn", (1, 8, 8), "digits")
    first = next(iter(original.state_dict()))
    assert chosen.model.state_dict()[first].equal(original.state_dict()[first])
    assert chosen.checkpoint is not None


def test_a_name_builds_the_model_of_its_dataset():
    chosen = choose_model("digits-resnet", None)
    assert (chosen.dataset, chosen.input_shape, chosen.checkpoint) == ("digits", (1, 8, 8), None)


@pytest.mark.parametrize("command", ["cost", "verify"])
def test_neither_model_nor_checkpoint_is_the_same_error(command):
    result = CliRunner().invoke(main, [command])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: give --model NAME or --checkpoint FILE"


@pytest.mark.parametrize("command", ["cost", "verify"])
def test_a_model_that_differs_from_the_checkpoint_is_the_same_error(command, he_cnn_checkpoint):
    path, _ = he_cnn_checkpoint
    result = CliRunner().invoke(main, [command, "--model", "digits-resnet",
                                       "--checkpoint", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --model 'digits-resnet' differs from the "
                                     "checkpoint's model 'he-cnn'; leave --model out")


@pytest.mark.parametrize("command", ["cost", "verify", "infer"])
def test_a_missing_checkpoint_is_the_same_error(command, tmp_path):
    result = CliRunner().invoke(main, [command, "--checkpoint", str(tmp_path / "none.pt")])
    assert result.exit_code != 0
    assert "none.pt" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
