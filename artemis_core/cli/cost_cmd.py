"""``artemis cost``: per-layer HE operation counts of a (pruned) model."""

from __future__ import annotations

import click
from torch import nn

from ..deploy.he_program import ConvStep, HEProgram, PolyStep, compile_model, fit_params
from ..errors import SpecError
from ..he.cost_model import CostModel
from ..he.specs import OpCount
from ..io import render
from ..pruning.masking import nonzero_masks
from ..pruning.pipeline import HESetting
from .options import choose_model, counting_log_n_option, format_option

LAYER_FIELDS = ("name", "kind", "c_in", "c_out", "kernel", "stride", "height", "width", "gap")
COUNT_FIELDS = ("rotations", "input_rotations", "output_rotations", "other_rotations", "pmult",
                "cmult", "adds", "rescales", "keys")


def parse_input_shape(ctx: click.Context, param: click.Parameter,
                      value: str | None) -> tuple[int, int, int] | None:
    """``CxHxW`` (e.g. ``3x32x32``) as a tuple of three positive ints."""
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"{value!r} is not CxHxW with positive sizes, e.g. 3x32x32")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


@click.command(epilog="""\b
Examples:
  artemis cost --model digits-resnet
  artemis cost --model resnet20 --log-n 16 --format json
  artemis cost --checkpoint pruned.pt --format github
  artemis cost --model resnet20 --cost-model bsgs --format json
""")
@click.option("--model", "model_name", help="Registered model name (see artemis plugins).")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Count this trained/pruned model; each layer's mask is weight != 0.")
@counting_log_n_option()
@click.option("--input", "input_shape", callback=parse_input_shape, metavar="CxHxW",
              help="Input shape; default: the model's (or the checkpoint's).")
@click.option("--num-classes", type=click.IntRange(min=1), default=10, show_default=True,
              help="Classifier outputs of a freshly built model.")
@click.option("--cost-model", "cost_model_name", default="gazelle", show_default=True,
              help="Registered cost model (gazelle, bsgs, bsgs-best, or a plugin's); bsgs "
                   "adds baby/giant/hybrid rotations, N1 per block and the best-N1 figure.")
@format_option()
def cost(model_name: str | None, checkpoint: str | None, log_n: int | None,
         input_shape: tuple[int, int, int] | None, num_classes: int, cost_model_name: str,
         fmt: str) -> None:
    """Count the HE operations of every conv/linear layer (rotations split into input,
    output and layout-change ones, PMult, additions, rescales, rotation keys) and the
    model total. An HE-friendly model (one ``artemis infer`` runs) is counted as the
    server runs it: every step of its encrypted program (activations, pooling and the
    classifier included) under its own modulus chain. Without --checkpoint the model is
    dense."""
    chosen = choose_model(model_name, checkpoint, num_classes, input_shape)
    model, shape, name = chosen.model, chosen.input_shape, chosen.name
    setting = HESetting.for_model(model, shape, cost_model_name, log_n)
    program = _program(model, shape, setting.cost_model, setting.params.log_n)
    if program is not None:
        params = program.service.params
        rows, total = [_step_row(step) for step in program.steps], program.op_count()
    else:
        params = setting.params
        masks = nonzero_masks(model, [s.name for s in setting.specs]) if checkpoint else {}
        rows, total = [], OpCount()
        for spec in setting.specs:
            plan = setting.cost_model.plan(spec, params, masks.get(spec.name))
            total = total + plan.op_count()
            rows.append(_row(spec.name, plan.op_count(), spec, details=plan.details()))
    extra: dict[str, int] = {}
    for row in rows:  # the cost model's own integer figures add up
        for key, value in row.pop("details").items():
            row[key] = value
            if isinstance(value, int):
                extra[key] = extra.get(key, 0) + value
    totals = {f: total.as_dict()[f] for f in COUNT_FIELDS} | extra
    totals["key_bytes"] = params.rotation_keys_bytes(total.keys)
    counted = "program" if program is not None else "layers"
    if fmt == "json":
        click.echo(render(rows, fmt, json_payload={
            "model": name, "input": list(shape), "log_n": params.log_n,
            "coeff_modulus_bits": list(params.coeff_modulus_bits), "counted": counted,
            "cost_model": cost_model_name, "layers": rows, "total": totals}))
        return
    table = [*rows, {"name": "total", **totals}]  # the headers leave rotation_steps out
    click.echo(render(table, fmt, headers=[*LAYER_FIELDS, *COUNT_FIELDS, "key_bytes"]))
    if fmt not in ("csv",):
        what = ("encrypted program, chain " + "-".join(map(str, params.coeff_modulus_bits))
                if program is not None else "conv/linear layers only")
        click.echo(f"\n{name}, input {'x'.join(map(str, shape))}, N=2^{params.log_n}, "
                   f"{cost_model_name}, {what}: {total.keys} rotation keys = "
                   f"{totals['key_bytes'] / 2**20:.1f} MiB", err=True)


def _program(model: nn.Module, shape: tuple[int, int, int], cost_model: CostModel,
             log_n: int) -> HEProgram | None:
    """The encrypted program ``artemis infer`` would run (shortest secure chain at
    N = 2^log_n), or None for a model without a leveled-HE form."""
    try:
        params = fit_params(model, shape, cost_model, log_n)
    except SpecError:
        return None
    return compile_model(model, shape, params, cost_model)


def _row(name: str, ops: OpCount, spec=None, kind: str | None = None,
         details: dict | None = None) -> dict:
    """One table row: the layer's geometry (blank for steps without one), its ops and
    the cost model's own figures (``details``, moved into the row by the caller)."""
    counts = ops.as_dict()
    layer = {f: getattr(spec, f) if spec is not None else None for f in LAYER_FIELDS}
    layer["name"] = name
    if kind is not None:
        layer["kind"] = kind
    return {**layer, **{f: counts[f] for f in COUNT_FIELDS},
            "rotation_steps": counts["rotation_steps"], "details": details or {}}


def _step_row(step) -> dict:
    """The row of one program step: a convolution with its spec, an activation, a pool."""
    if isinstance(step, ConvStep):
        return _row(step.name, step.op_count(), step.plan.spec, details=step.plan.details())
    return _row(step.name, step.op_count(), kind="act" if isinstance(step, PolyStep) else "pool")
