"""The MNIST-family IDX plugin: small IDX files written here, and the real Fashion-MNIST
files when Debian's dataset-fashion-mnist package is installed."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from artemis_plugins.datasets.idx import FILES, FashionMnist, parse_idx
from click.testing import CliRunner

from artemis_core import ArtemisError
from artemis_core.cli import main
from artemis_core.learning.catalog import subset
from artemis_core.learning.checkpoint import load_model
from artemis_core.registry import get

SYSTEM = FashionMnist.system_dir


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in the IDX format: magic 0 0 8 NDIM, big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_set(directory: Path, train: int = 12, test: int = 5, zipped: bool = True,
                  seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four standard files in ``directory`` (gzipped or not); returns the arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, count in (("train", train), ("test", test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        for stem, array in zip(FILES[split], (images, labels), strict=True):
            data = idx_bytes(array)
            path = directory / (f"{stem}.gz" if zipped else stem)
            path.write_bytes(gzip.compress(data) if zipped else data)
        written[split] = (images, labels)
    return written


@pytest.fixture
def no_system_files(monkeypatch):
    """The Debian location is not searched (the real files may be installed here)."""
    for name in ("fashion-mnist", "mnist", "kmnist"):
        monkeypatch.setattr(get("dataset", name), "system_dir", None)


@pytest.mark.parametrize("zipped", [True, False])
@pytest.mark.parametrize("name", ["fashion-mnist", "mnist", "kmnist"])
def test_reads_the_four_files_gzipped_or_not(tmp_path, name, zipped, no_system_files):
    written = write_idx_set(tmp_path / name, zipped=zipped)
    dataset = get("dataset", name)(tmp_path)
    train, test = dataset.load("train"), dataset.load("test")
    assert train.tensors[0].shape == (12, 1, 28, 28) and test.tensors[0].shape == (5, 1, 28, 28)
    assert train.tensors[0].dtype == torch.float32 and train.tensors[1].dtype == torch.long
    assert train.tensors[1].tolist() == written["train"][1].tolist()
    pixels = written["train"][0] / 255.0
    expected = (written["test"][0][0] / 255.0 - pixels.mean()) / pixels.std(ddof=1)
    assert np.allclose(test.tensors[0][0, 0].numpy(), expected, atol=1e-5)
    assert train.tensors[0].mean().item() == pytest.approx(0, abs=1e-5)


def test_root_may_be_the_folder_itself_torchvisions_layout_or_the_environment(
        tmp_path, monkeypatch, no_system_files):
    write_idx_set(tmp_path / "here")
    assert len(get("dataset", "mnist")(tmp_path / "here").load("test")) == 5
    write_idx_set(tmp_path / "tv" / "KMNIST" / "raw", test=3)
    assert len(get("dataset", "kmnist")(tmp_path / "tv").load("test")) == 3
    monkeypatch.setenv("ARTEMIS_DATA", str(tmp_path / "here"))
    assert len(get("dataset", "fashion-mnist")().load("test")) == 5


def test_the_system_directory_is_the_fallback(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "usr-share", test=4)
    monkeypatch.setattr(FashionMnist, "system_dir", tmp_path / "usr-share")
    monkeypatch.delenv("ARTEMIS_DATA", raising=False)
    assert len(FashionMnist().load("test")) == 4
    assert len(FashionMnist(tmp_path / "empty").load("test")) == 4


def test_a_partial_set_under_the_root_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "usr-share")
    monkeypatch.setattr(FashionMnist, "system_dir", tmp_path / "usr-share")
    write_idx_set(tmp_path / "mine" / "fashion-mnist")
    (tmp_path / "mine" / "fashion-mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ArtemisError) as error:
        FashionMnist(tmp_path / "mine").load("test")
    assert "no train-labels-idx1-ubyte[.gz] in " + repr(str(tmp_path / "mine" / "fashion-mnist")) \
        in str(error.value)


def test_a_missing_file_is_one_line_naming_it_where_and_how(tmp_path, no_system_files):
    write_idx_set(tmp_path / "fashion-mnist")
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ArtemisError) as error:
        get("dataset", "fashion-mnist")(tmp_path).load("train")
    message = str(error.value)
    assert "\n" not in message and "t10k-labels-idx1-ubyte[.gz]" in message
    assert "train-images" not in message and str(tmp_path / "fashion-mnist") in message
    assert "make data" in message and "apt-get install dataset-fashion-mnist" in message


def test_no_root_and_no_system_files_asks_for_a_root(monkeypatch, no_system_files):
    monkeypatch.delenv("ARTEMIS_DATA", raising=False)
    with pytest.raises(ArtemisError, match="--data-root DIR or set ARTEMIS_DATA"):
        get("dataset", "kmnist")().load("test")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def _bad_magic(path: Path) -> None:
    path.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + gzip.decompress(path.read_bytes())[4:]))


def _short_data(path: Path) -> None:
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1]))


def _not_gzip_nor_idx(path: Path) -> None:
    path.write_bytes(b"<html>404</html>")


@pytest.mark.parametrize("damage, reason", [
    (_truncate, "gzip data is damaged"),
    (_bad_magic, "bad magic number 01020304"),
    (_short_data, "needs 3920 data bytes, the file has 3919"),
    (_not_gzip_nor_idx, "bad magic number"),
])
def test_a_corrupt_file_is_one_line_naming_it(tmp_path, no_system_files, damage, reason):
    write_idx_set(tmp_path / "fashion-mnist")
    path = tmp_path / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    damage(path)
    with pytest.raises(ArtemisError) as error:
        get("dataset", "fashion-mnist")(tmp_path).load("train")  # checked before training
    message = str(error.value)
    assert "\n" not in message and reason in message and repr(str(path)) in message
    assert "make data" in message


def test_files_that_do_not_fit_together_are_refused(tmp_path, no_system_files):
    folder = tmp_path / "mnist"
    write_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(ArtemisError, match=r"labels of shape \(4,\) for 5 images"):
        get("dataset", "mnist")(tmp_path).load("test")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.full(5, 10, np.uint8))))
    with pytest.raises(ArtemisError, match=r"labels outside 0\.\.9"):
        get("dataset", "mnist")(tmp_path).load("test")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((5, 32, 32), np.uint8))))
    with pytest.raises(ArtemisError, match=r"shape \(32, 32\), expected \(28, 28\)"):
        get("dataset", "mnist")(tmp_path).load("test")


def test_parse_idx_reads_other_types_and_shapes():
    array = np.arange(6, dtype=">i4").reshape(2, 3)
    raw = struct.pack(">BBBB", 0, 0, 0x0C, 2) + struct.pack(">2I", 2, 3) + array.tobytes()
    assert parse_idx(raw).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_unknown_split_is_refused(tmp_path, no_system_files):
    write_idx_set(tmp_path)
    with pytest.raises(ArtemisError, match="no split 'valid'"):
        get("dataset", "mnist")(tmp_path).load("valid")


def test_subset_is_a_fixed_draw_in_order(tmp_path, no_system_files):
    write_idx_set(tmp_path, train=50)
    train = get("dataset", "mnist")(tmp_path).load("train")
    first, second = subset(train, 20), subset(train, 20)
    assert torch.equal(first.tensors[0], second.tensors[0]) and len(first) == 20
    rows = [int(torch.nonzero((train.tensors[0] == x).flatten(1).all(1))[0])
            for x in first.tensors[0]]
    assert rows == sorted(rows) and rows != list(range(20))
    assert subset(train, None) is train
    with pytest.raises(ArtemisError, match="allowed: 1..50"):
        subset(train, 51)


@pytest.mark.skipif(not all((SYSTEM / f"{s}.gz").is_file() for p in FILES.values() for s in p),
                    reason="Debian's dataset-fashion-mnist is not installed (make data)")
def test_the_real_fashion_mnist_files():
    dataset = FashionMnist()
    test = dataset.load("test")
    images, labels = test.tensors
    assert images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(labels).tolist() == [1000] * 10
    train_labels = dataset.load("train").tensors[1]
    assert len(train_labels) == 60_000 and torch.bincount(train_labels).tolist() == [6000] * 10


def test_artemis_train_runs_on_idx_files_with_a_subset(tmp_path, no_system_files):
    write_idx_set(tmp_path / "fashion-mnist", train=40, test=10)
    out = tmp_path / "fm.pt"
    result = CliRunner().invoke(main, [
        "train", "--dataset", "fashion-mnist", "--data-root", str(tmp_path), "--epochs", "1",
        "--train-subset", "16", "--batch-size", "8", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    model, saved = load_model(out)
    assert saved.model == "mnist-resnet" and saved.input_shape == (1, 28, 28)
    assert saved.metrics["config"]["train_subset"] == 16


def test_artemis_train_on_a_corrupt_file_is_one_error_line(tmp_path, no_system_files):
    write_idx_set(tmp_path / "fashion-mnist")
    _short_data(tmp_path / "fashion-mnist" / "train-labels-idx1-ubyte.gz")
    result = CliRunner().invoke(main, ["train", "--dataset", "fashion-mnist", "--data-root",
                                       str(tmp_path), "--out", str(tmp_path / "x.pt")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "train-labels-idx1-ubyte.gz" in result.output
