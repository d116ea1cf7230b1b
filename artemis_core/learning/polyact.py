"""A low-degree polynomial activation that CKKS evaluates with one multiplication."""

from __future__ import annotations

import torch
from torch import nn


class PolyAct(nn.Module):
    """f(x) = a·x² + b·x + c with trainable scalars a, b, c.

    Under CKKS this costs one ciphertext multiplication (one level):
    f(x) = a·(x·(x + b/a) + c/a), and the factor ``a`` is folded into the next linear
    layer's weights (see :mod:`artemis_core.deploy.he_program`), so ``a`` must stay away from
    zero. The default start, 0.25·x² + 0.5·x + 0.125, is close to ReLU's least-squares
    fit on [-2, 2] (0.234·x² + 0.5·x + 0.188).
    """

    def __init__(self, a: float = 0.25, b: float = 0.5, c: float = 0.125) -> None:
        super().__init__()
        self.coefficients = nn.Parameter(torch.tensor([a, b, c]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the polynomial element-wise."""
        a, b, c = self.coefficients
        return (a * x + b) * x + c

    def extra_repr(self) -> str:
        a, b, c = self.coefficients.tolist()
        return f"{a:.4g}·x² + {b:.4g}·x + {c:.4g}"
