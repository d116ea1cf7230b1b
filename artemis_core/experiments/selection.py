"""Model selection over stored runs: the λ of each strategy × target × seed chosen on the
validation split (never on the test set)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .results import RunRecord, settings_digest

#: Settings that say which λ a run used; λ is chosen among runs equal in all the others.
CHOICE_KEYS = ("lam",)


def selection_group(record: RunRecord) -> tuple[Any, ...]:
    """Runs that differ only in λ share this: names, seed, and every other setting."""
    key = record.key
    rest = {k: v for k, v in record.config.items() if k not in CHOICE_KEYS}
    return (key.model, key.dataset, key.strategy, key.target, key.seed, settings_digest(rest))


def choose_lams(records: Iterable[RunRecord]) -> list[RunRecord]:
    """One run per :func:`selection_group`: the successful one with the best validation
    accuracy (ties: the smallest λ), else the group's first failure. Order: first seen."""
    groups: dict[tuple[Any, ...], list[RunRecord]] = {}
    for record in records:
        groups.setdefault(selection_group(record), []).append(record)
    chosen = []
    for members in groups.values():
        ok = sorted((r for r in members if r.ok), key=lambda r: float(r.key.lam or 0))
        if ok:
            chosen.append(max(ok, key=lambda r: _validation(r)))
        else:
            chosen.append(members[0])
    return chosen


def _validation(record: RunRecord) -> float:
    value = record.metrics.get("val_accuracy")
    return float(value) if isinstance(value, int | float) else float("-inf")
