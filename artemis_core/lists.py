"""Comma-separated lists as users type them (``--seeds 0,1``, ``--sort accuracy:desc,target``)."""

from __future__ import annotations


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: items stripped, empty ones dropped."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
