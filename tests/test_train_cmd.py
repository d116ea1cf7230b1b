"""``artemis train``: trains, writes a loadable checkpoint, reports, refuses bad names."""

import json

import pytest
import torch
from click.testing import CliRunner
from fake_cifar import write_cifar10

from artemis_core.cli import main
from artemis_core.learning.checkpoint import load_model
from artemis_core.learning.training import evaluate
from artemis_core.registry import get


def _train(*args):
    return CliRunner().invoke(main, ["train", "--no-progress", *args])


def test_trains_and_saves_a_checkpoint_that_reproduces_the_reported_accuracy(tmp_path):
    out = tmp_path / "synthetic.pt"
    result = _train("--dataset", "synthetic", "--epochs", "3", "--lr", "0.05",
                    "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"] == "small-cnn" and report["epochs"] == 3
    assert len(report["history"]) == 3
    model, checkpoint = load_model(out)
    test_set = get("dataset", "synthetic")().load("test")
    assert checkpoint.metrics["accuracy"] == evaluate(model, test_set)
    assert report["test_acc"] == pytest.approx(checkpoint.metrics["accuracy"], abs=1e-4)
    assert checkpoint.strategy == "dense" and checkpoint.dataset == "synthetic"
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic.pt"]  # no state left


def test_table_names_the_run(tmp_path):
    result = _train("--dataset", "synthetic", "--epochs", "1", "--out", str(tmp_path / "m.pt"))
    assert result.exit_code == 0, result.output
    header, _, row = result.output.splitlines()[:3]
    assert header.split()[:6] == ["model", "dataset", "epochs", "train_acc", "test_acc",
                                  "seconds"]
    assert row.split()[:3] == ["small-cnn", "synthetic", "1"]


def test_same_seed_gives_the_same_checkpoint(tmp_path):
    for name in ("a.pt", "b.pt"):
        assert _train("--dataset", "synthetic", "--epochs", "1", "--seed", "4",
                      "--out", str(tmp_path / name)).exit_code == 0
    a, _ = load_model(tmp_path / "a.pt")
    b, _ = load_model(tmp_path / "b.pt")
    x = torch.randn(3, 3, 8, 8)
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("option, value, known", [
    ("--model", "no-such-net", "digits-resnet"), ("--dataset", "no-such-data", "digits"),
])
def test_unknown_names_list_the_known_ones(tmp_path, option, value, known):
    result = _train(option, value, "--out", str(tmp_path / "x.pt"))
    assert result.exit_code != 0
    assert f"{value!r}" in result.output and known in result.output
    assert "Traceback" not in result.output


def test_cifar_is_read_from_the_data_root(tmp_path):
    write_cifar10(tmp_path / "data", per_batch=8, test=8)
    result = _train("--dataset", "cifar10", "--data-root", str(tmp_path / "data"),
                    "--model", "small-cnn", "--epochs", "1", "--augment",
                    "--out", str(tmp_path / "c.pt"), "--format", "json")
    assert result.exit_code == 0, result.output
    _, checkpoint = load_model(tmp_path / "c.pt")
    assert checkpoint.input_shape == (3, 32, 32) and checkpoint.num_classes == 10
    assert checkpoint.metrics["config"]["augment"] is True


def test_missing_cifar_directory_is_a_one_line_error(tmp_path):
    result = _train("--dataset", "cifar10", "--data-root", str(tmp_path),
                    "--out", str(tmp_path / "c.pt"))
    assert result.exit_code != 0 and "never downloads" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_default_digits_training_reaches_97_percent(tmp_path):
    result = _train("--out", str(tmp_path / "digits.pt"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["test_acc"] >= 0.97
