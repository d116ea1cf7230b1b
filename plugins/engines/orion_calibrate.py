"""Measure a :class:`~artemis_core.he.latency.Calibration` of Orion's Lattigo backend.

Orion evaluates each block of a linear layer as one Lattigo linear transform: the input
is decomposed once (hoisted), baby-step rotations reuse that decomposition, every
diagonal is a product in the extended basis, and each giant step is a full rotation.
So a transform costs a fixed part plus a part per diagonal, baby and giant rotation,
which Pyfhel's per-operation prices do not show (Lattigo's fixed part, about 20 ms at
N = 2^14, is several rotations). This module times the primitives Orion calls outside
transforms (rotation, plaintext and ciphertext products, additions, rescales, encoding)
at every level through Orion's own bindings, and times transforms of many diagonal sets
at every level, fitting the four terms by non-negative least squares.

Orion rebuilds Lattigo's automorphism index of every linear-transform key the process
holds on each transform (``EvaluateLinearTransform`` calls ``Evaluator.WithKey``), so a
transform's fixed part grows with the keys held: each design is timed holding its own
keys only (the process's linear-transform keys are dropped after it), as a model that
holds about its own keys runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import numpy as np
from artemis_plugins.cost.bsgs import choose_log_n1, class_counts, rotations_at

from artemis_core.deploy.orion_net import import_orion
from artemis_core.he.calibrate import machine_info
from artemis_core.he.latency import TRANSFORM_TERMS, Calibration

#: diagonals per timed transform; each size is timed as a contiguous run, a random set
#: and a strided set, so that the diagonal, baby and giant counts vary apart
TRANSFORM_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
#: Lattigo's baby-step/giant-step ratio as Orion passes it (int(ln 2) = 0)
LOG_RATIO = 0
#: distinct rotation steps cycled by the rotation timing (one key stays in cache)
ROTATION_STEPS = tuple(range(1, 9))


def transform_designs(slots: int, sizes: Sequence[int] = TRANSFORM_SIZES,
                      seed: int = 0) -> list[list[int]]:
    """Diagonal index sets to time: per size, contiguous, random and strided."""
    rng = np.random.default_rng(seed)
    designs = []
    for k in sizes:
        start = int(rng.integers(0, slots))
        stride = int(rng.choice([8, 16, 64]))
        designs += [sorted({(start + i) % slots for i in range(k)}),
                    sorted(rng.choice(slots, size=k, replace=False).tolist()),
                    sorted({(i * stride) % slots for i in range(k)})]
    return designs


def transform_terms(diagonals: Sequence[int], slots: int) -> tuple[int, int, int]:
    """(diagonals, baby, giant rotations) of one transform, by Lattigo's N1 rule."""
    live = np.zeros((1, slots), dtype=bool)
    live[0, list(diagonals)] = True
    counts = class_counts(live, slots)
    baby, giant = rotations_at(counts, choose_log_n1(counts, "lattigo", LOG_RATIO))[0]
    return len(diagonals), int(baby), int(giant)


def fit_transform(rows: Sequence[tuple[int, int, int]], seconds: Sequence[float]
                  ) -> dict[str, float]:
    """Non-negative seconds per :data:`TRANSFORM_TERMS` fitted to timed transforms, in
    relative error (a 1-diagonal transform weighs as much as a 128-diagonal one); the
    timings more than 3 median deviations off the first fit (a garbage collection or a
    neighbour's burst) are dropped before the second."""
    from scipy.optimize import nnls  # an Orion dependency

    design = np.column_stack([np.ones(len(rows)), np.asarray(rows, dtype=np.float64)])
    y = np.asarray(seconds, dtype=np.float64)
    keep = np.ones(len(y), dtype=bool)
    for _ in range(2):
        coefficients, _ = nnls(design[keep] / y[keep, None], np.ones(keep.sum()))
        error = np.abs(design @ coefficients / y - 1)
        keep = error <= 3 * np.median(error) + 1e-9
    return dict(zip(TRANSFORM_TERMS, map(float, coefficients), strict=True))


def measure_orion_calibration(ckks_params: dict, repeats: int = 5,
                              progress: Callable[[str], None] | None = None,
                              sizes: Sequence[int] = TRANSFORM_SIZES) -> Calibration:
    """Median wall seconds of Orion's primitives and fitted transform prices at every
    level from the top of ``ckks_params``'s chain down to 1 (``progress(what)`` after
    each level's primitives and transforms). Sets up Orion's one scheme per process and
    leaves it without linear-transform keys: models compiled before cannot run after."""
    from .orion import ORION_DEFAULTS, _scheme

    orion = import_orion()
    scheme = _scheme(orion, {"ckks_params": ckks_params, "orion": ORION_DEFAULTS})
    backend, slots = scheme.backend, scheme.params.get_slots()
    scale = 2 ** ckks_params["LogScale"]
    top = len(ckks_params["LogQ"]) - 1
    for step in ROTATION_STEPS:
        backend.AddRotationKey(step)

    prices: dict[str, dict[int, float]] = {}
    transform: dict[int, dict[str, float]] = {}
    client: dict[str, float] = {}
    designs = transform_designs(slots, sizes)
    for level in range(top, 0, -1):
        ciphertext, timed = _time_primitives(backend, level, scale, slots, repeats,
                                             with_client=level == top)
        for name, seconds in timed.items():
            if name in ("encrypt", "decrypt"):
                client[name] = seconds
            else:
                prices.setdefault(name, {})[level] = seconds
        if progress is not None:
            progress(f"primitives at level {level}")
        transform[level] = _time_transforms(backend, designs, level, ciphertext, slots, repeats)
        if progress is not None:
            progress(f"transforms at level {level}")
    key, pointer = backend.GenerateAndSerializeRotationKey(5)  # rotation by 1: 5^1 mod 2N
    key_bytes = len(key)
    backend.FreeCArray(pointer)
    return Calibration(
        log_n=ckks_params["LogN"],
        coeff_modulus_bits=(*ckks_params["LogQ"], *ckks_params["LogP"]),
        **prices, **client, rotation_key_bytes=key_bytes,
        machine=machine_info() + ", orion-fhe (Lattigo v6)",
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        note=(f"Orion's Lattigo backend: median wall seconds of {repeats} runs per "
              f"primitive and per transform ({len(designs)} diagonal sets per level, "
              "terms fitted by non-negative least squares), scale "
              f"2^{ckks_params['LogScale']}"),
        engine="orion", transform=transform,
    )


def _time_primitives(backend, level: int, scale: int, slots: int, repeats: int,
                     with_client: bool) -> tuple[int, dict[str, float]]:
    """A ciphertext at ``level`` and the median seconds of each primitive on it
    (``with_client``: also encryption and decryption)."""
    rng = np.random.default_rng(level)
    plaintext = backend.Encode(rng.uniform(-1, 1, slots).tolist(), level, scale)
    ciphertext = backend.Encrypt(plaintext)
    other = backend.Encrypt(backend.Encode(rng.uniform(-1, 1, slots).tolist(), level, scale))
    values = rng.uniform(-1, 1, slots).tolist()
    free_ct, free_pt = backend.DeleteCiphertext, backend.DeletePlaintext
    # Orion's RescaleNew rescales its input in place too: each run gets its own input
    to_rescale = [backend.Encrypt(plaintext) for _ in range(repeats)]
    ops = {
        "rotation": (lambda i: backend.RotateNew(ciphertext,
                                                 ROTATION_STEPS[i % len(ROTATION_STEPS)]),
                     free_ct),
        "pmult": (lambda i: backend.MulPlaintextNew(ciphertext, plaintext), free_ct),
        "cmult": (lambda i: backend.MulRelinCiphertextNew(ciphertext, other), free_ct),
        "add": (lambda i: backend.AddCiphertextNew(ciphertext, other), free_ct),
        "rescale": (lambda i: backend.RescaleNew(to_rescale[i]), free_ct),
        "encode": (lambda i: backend.Encode(values, level, scale), free_pt),
    }
    if with_client:
        ops["encrypt"] = (lambda i: backend.Encrypt(plaintext), free_ct)
        ops["decrypt"] = (lambda i: backend.Decrypt(ciphertext), free_pt)
    timed = {name: _median(op, repeats, free) for name, (op, free) in ops.items()}
    for used in to_rescale:
        free_ct(used)
    return ciphertext, timed


def _time_transforms(backend, designs: list[list[int]], level: int, ciphertext: int,
                     slots: int, repeats: int) -> dict[str, float]:
    """Fitted transform terms at ``level`` from timing every design on ``ciphertext``,
    each holding only its own keys."""
    rng = np.random.default_rng(level)
    rows, seconds = [], []
    for diagonals in designs:
        data = rng.uniform(-1, 1, (len(diagonals), slots)).reshape(-1).tolist()
        transform = backend.GenerateLinearTransform(diagonals, data, level, 2.0, "none")
        for galois in backend.GetLinearTransformRotationKeys(transform):
            backend.GenerateLinearTransformRotationKey(galois)
        run = lambda i, t=transform: backend.EvaluateLinearTransform(t, ciphertext)  # noqa: E731
        _median(run, 1, backend.DeleteCiphertext)  # warm up
        seconds.append(_median(run, repeats, backend.DeleteCiphertext))
        rows.append(transform_terms(diagonals, slots))
        backend.DeleteLinearTransform(transform)
        backend.RemoveRotationKeys()
    return fit_transform(rows, seconds)


def _median(op: Callable[[int], int], repeats: int, free: Callable[[int], None]) -> float:
    """Median wall seconds of ``op(i)``; each result handle is freed, untimed."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        out = op(i)
        times.append(time.perf_counter() - start)
        free(out)
    return float(np.median(times))
