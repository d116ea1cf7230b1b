"""Pareto optimality of (accuracy, rotation reduction) points: higher is better in both."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def pareto_mask(accuracy: Sequence[float], reduction: Sequence[float]) -> np.ndarray:
    """Boolean mask of the points no other point dominates.

    Point j dominates point i when it is at least as good in both objectives and
    strictly better in one; equal points do not dominate each other (both are kept).
    """
    acc = np.asarray(accuracy, dtype=float)
    red = np.asarray(reduction, dtype=float)
    # [i, j]: does j dominate i?  One broadcast instead of a double loop.
    at_least = (acc[None, :] >= acc[:, None]) & (red[None, :] >= red[:, None])
    strictly = (acc[None, :] > acc[:, None]) | (red[None, :] > red[:, None])
    return ~(at_least & strictly).any(axis=1)


def pareto_by_group(groups: Sequence[Hashable], accuracy: Sequence[float],
                    reduction: Sequence[float]) -> np.ndarray:
    """:func:`pareto_mask` computed separately within each group label (e.g. one per
    model and dataset: runs on different data are not comparable)."""
    labels = list(groups)
    acc = np.asarray(accuracy, dtype=float)
    red = np.asarray(reduction, dtype=float)
    mask = np.zeros(len(labels), dtype=bool)
    for label in dict.fromkeys(labels):
        members = np.array([g == label for g in labels])
        mask[members] = pareto_mask(acc[members], red[members])
    return mask
