"""Atomic writes: a complete new file or the old one, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from artemis_core.io import atomic_write


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path, binary=True) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("killed")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_the_new_file_gets_the_umask_permissions_not_private_ones(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "sub" / "f.txt") as handle:
            handle.write("héllo")
    finally:
        os.umask(previous)
    path = tmp_path / "sub" / "f.txt"
    assert path.read_text(encoding="utf-8") == "héllo"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
