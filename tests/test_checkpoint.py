"""Checkpoints: round trip, pruned weights, safe loading, atomic writes."""

import pytest
import torch
from torch.nn.utils import prune

from artemis_core import ArtemisError
from artemis_core.errors import first_line
from artemis_core.learning.checkpoint import Checkpoint, atomic_save, load, load_model, save
from artemis_core.learning.zoo import build_model

SHAPE = (3, 8, 8)


def _trained_looking(model):
    # Non-default BN statistics, so that a round trip that loses buffers would show.
    model.train()
    model(torch.randn(16, *SHAPE))
    return model.eval()


def _checkpoint(model, **extra):
    return Checkpoint.from_model(model, model="small-cnn", dataset="synthetic", num_classes=4,
                                 input_shape=SHAPE, **extra)


def test_round_trip_rebuilds_the_same_function(tmp_path):
    model = _trained_looking(build_model("small-cnn", 4, SHAPE, seed=0))
    path = tmp_path / "model.pt"
    save(_checkpoint(model, metrics={"test_accuracy": 0.5}, strategy="dense"), path)
    loaded, checkpoint = load_model(path)
    x = torch.randn(5, *SHAPE)
    assert torch.allclose(loaded(x), model(x))
    assert checkpoint.metrics == {"test_accuracy": 0.5} and checkpoint.strategy == "dense"
    assert checkpoint.input_shape == SHAPE and checkpoint.masks == {}


def test_file_is_plain_data_loadable_with_weights_only(tmp_path):
    path = tmp_path / "model.pt"
    save(_checkpoint(build_model("small-cnn", 4, SHAPE)), path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "artemis-checkpoint" and payload["version"] == 1
    assert payload["model"] == "small-cnn" and payload["input_shape"] == list(SHAPE)


def test_pruned_weights_are_stored_under_plain_names_with_masks(tmp_path):
    model = _trained_looking(build_model("small-cnn", 4, SHAPE, seed=0))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    effective = model[0].weight.detach().clone()
    path = tmp_path / "pruned.pt"
    save(_checkpoint(model, strategy="unstructured", target=2.0), path)
    checkpoint = load(path)
    assert not any(k.endswith(("_orig", "_mask")) for k in checkpoint.state_dict)
    assert torch.equal(checkpoint.state_dict["0.weight"], effective)
    assert list(checkpoint.masks) == ["0"]
    mask = checkpoint.masks["0"]
    assert mask.dtype == torch.bool and torch.equal(mask, model[0].weight_mask.bool())
    loaded, _ = load_model(path)
    assert torch.equal(loaded[0].weight == 0, ~mask)


def test_training_state_survives(tmp_path):
    model = build_model("small-cnn", 4, SHAPE)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, *SHAPE)).sum().backward()
    optimizer.step()
    training = {"epoch": 3, "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}
    save(_checkpoint(model, training=training), tmp_path / "state.pt")
    restored = load(tmp_path / "state.pt").training
    assert restored["epoch"] == 3 and torch.equal(restored["rng"], training["rng"])
    fresh = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fresh.load_state_dict(restored["optimizer"])


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ArtemisError, match="broken.pt"):
        load(path)


def test_foreign_torch_file_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ArtemisError, match="not an artemis-checkpoint"):
        load(path)


def test_pickled_code_is_not_executed(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "artemis-checkpoint", "hook": print}, path)
    with pytest.raises(ArtemisError, match="evil.pt"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ArtemisError, match="does not exist"):
        load(tmp_path / "absent.pt")


def test_checkpoint_of_unknown_model_lists_the_known_ones(tmp_path):
    model = build_model("small-cnn", 4, SHAPE)
    path = tmp_path / "odd.pt"
    save(Checkpoint.from_model(model, model="no-such-net", dataset="synthetic", num_classes=4,
                               input_shape=SHAPE), path)
    with pytest.raises(ArtemisError, match="known: .*small-cnn"):
        load_model(path)


def test_failed_write_keeps_the_old_file_and_no_temporaries(tmp_path):
    path = tmp_path / "model.pt"
    save(_checkpoint(build_model("small-cnn", 4, SHAPE)), path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 -- any pickling error
        atomic_save({"unpicklable": lambda: None}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


@pytest.mark.parametrize("exc, quoted", [
    (RuntimeError("Error(s) in loading state_dict:\n\tMissing key(s): fc.weight"),
     "Error(s) in loading state_dict:"),
    (RuntimeError(), "RuntimeError"),
])
def test_errors_quote_the_first_line_of_a_library_message(exc, quoted):
    assert first_line(exc) == quoted
