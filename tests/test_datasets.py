"""Built-in dataset plugins: digits, synthetic, and CIFAR read from local pickle files."""

import os
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from fake_cifar import write_batch, write_cifar10

from artemis_core import ArtemisError
from artemis_core.registry import get, get_registry


def test_every_dataset_is_registered():
    assert {"digits", "synthetic", "cifar10", "cifar100", "fashion-mnist", "mnist", "kmnist"} \
        <= set(get_registry().names("dataset"))


@pytest.mark.parametrize("name", ["digits", "synthetic", "cifar10", "cifar100", "fashion-mnist",
                                  "mnist", "kmnist"])
def test_default_model_is_registered(name):
    get("model", get("dataset", name).default_model)


def test_digits_split_sizes_and_shapes():
    digits = get("dataset", "digits")()
    train, test = digits.load("train"), digits.load("test")
    assert len(train) + len(test) == 1797
    assert len(test) == pytest.approx(0.2 * 1797, abs=1)
    images, labels = train.tensors
    assert images.shape[1:] == (1, 8, 8) and images.dtype == torch.float32
    assert labels.dtype == torch.long and set(labels.tolist()) == set(range(10))


def test_digits_split_is_fixed():
    first = get("dataset", "digits")().load("test").tensors
    second = get("dataset", "digits")().load("test").tensors
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_digits_split_is_stratified():
    digits = get("dataset", "digits")()
    train = Counter(digits.load("train").tensors[1].tolist())
    test = Counter(digits.load("test").tensors[1].tolist())
    for label in range(10):
        total = train[label] + test[label]
        assert abs(test[label] - 0.2 * total) <= 1


def test_digits_training_split_is_standardised():
    images = get("dataset", "digits")().load("train").tensors[0]
    assert images.mean().item() == pytest.approx(0, abs=1e-5)
    assert images.std().item() == pytest.approx(1, abs=1e-4)


def test_synthetic_is_seeded_and_splits_differ():
    synthetic = get("dataset", "synthetic")
    a, b = synthetic().load("train").tensors, synthetic().load("train").tensors
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    test = synthetic().load("test").tensors[0]
    assert a[0].shape[1:] == test.shape[1:] == synthetic.input_shape
    assert not torch.equal(a[0][: len(test)], test)


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_unknown_split_is_refused(name):
    with pytest.raises(ArtemisError, match="allowed: train, test"):
        get("dataset", name)().load("validation")


@pytest.fixture
def cifar10_dir(tmp_path):
    return tmp_path, write_cifar10(tmp_path)


def test_cifar10_reads_the_python_pickle_format(cifar10_dir):
    root, written = cifar10_dir
    dataset = get("dataset", "cifar10")(root)
    train = dataset.load("train")
    images, labels = train.tensors
    assert images.shape == (15, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [label for _, batch in written["train"] for label in batch]
    raw = written["train"][0][0][0].reshape(3, 32, 32)  # first image, channel-major rows
    mean, std = torch.tensor(dataset.mean), torch.tensor(dataset.std)
    expected = (torch.from_numpy(raw).float() / 255 - mean.view(3, 1, 1)) / std.view(3, 1, 1)
    assert torch.allclose(images[0], expected, atol=1e-6)
    assert len(dataset.load("test")) == 4


def test_cifar_root_may_be_the_batch_folder_or_come_from_the_environment(cifar10_dir,
                                                                         monkeypatch):
    root, _ = cifar10_dir
    assert len(get("dataset", "cifar10")(root / "cifar-10-batches-py").load("test")) == 4
    monkeypatch.setenv("ARTEMIS_DATA", os.fspath(root))
    assert len(get("dataset", "cifar10")().load("test")) == 4


def test_cifar100_uses_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _, train_labels = write_batch(folder / "train", rng, 6, b"fine_labels", 100)
    write_batch(folder / "test", rng, 2, b"fine_labels", 100)
    dataset = get("dataset", "cifar100")(tmp_path)
    assert dataset.load("train").tensors[1].tolist() == train_labels
    assert dataset.num_classes == 100


def test_missing_cifar_directory_says_where_it_looked(tmp_path):
    with pytest.raises(ArtemisError, match="never downloads") as error:
        get("dataset", "cifar10")(tmp_path / "nowhere").load("train")
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in str(error.value)


def test_cifar_without_root_asks_for_one(monkeypatch):
    monkeypatch.delenv("ARTEMIS_DATA", raising=False)
    with pytest.raises(ArtemisError, match="--data-root"):
        get("dataset", "cifar10")().load("test")


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar_pickle_with_code_is_refused(cifar10_dir):
    root, _ = cifar10_dir
    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as stream:
        pickle.dump({b"data": _Payload()}, stream)
    with pytest.raises(ArtemisError, match="refusing to load"):
        get("dataset", "cifar10")(root).load("test")


def _rewrite_test_batch(root, data, labels):
    path = root / "cifar-10-batches-py" / "test_batch"
    with open(path, "wb") as stream:
        pickle.dump({b"data": data, b"labels": labels}, stream)
    return path


@pytest.mark.parametrize("data, labels, message", [
    (np.zeros((2, 3072), np.uint8), [0, 12], "test label 12 in"),
    (np.zeros((2, 3071), np.uint8), [0, 1], "6142 values; expected uint8 pixels, a multiple "
                                            "of 3x32x32 = 3072"),
    (np.zeros((2, 3072), np.uint8), [0, 1, 2], "2 images but 3 labels"),
    (np.zeros((2, 3072), np.float64), [0, 1], "b'data' is float64"),
    (np.zeros((2, 3072), np.uint8), ["a", "b"], "expected a list of integer labels"),
    (np.zeros((0, 3072), np.uint8), [], "the test split in"),
])
def test_a_bad_cifar_file_is_a_one_line_error_naming_file_and_value(cifar10_dir, data, labels,
                                                                    message):
    root, _ = cifar10_dir
    path = _rewrite_test_batch(root, data, labels)
    with pytest.raises(ArtemisError) as error:
        get("dataset", "cifar10")(root).load("test")
    text = str(error.value)
    assert message in text and "\n" not in text
    assert str(path) in text or str(path.parent) in text


def test_an_empty_split_of_any_dataset_stops_the_pipeline_in_one_line(monkeypatch):
    synthetic = get("dataset", "synthetic")()
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0).long())
    monkeypatch.setattr(synthetic, "load", lambda split: empty)
    with pytest.raises(ArtemisError, match="dataset 'synthetic': the test split in "
                                           "'synthetic' has no samples"):
        synthetic.split("test")
