"""``artemis cost``: per-layer HE operation counts of a (pruned) model."""

from __future__ import annotations

import click

from ..he.specs import OpCount
from ..io import render
from ..pruning.masking import nonzero_masks
from ..pruning.pipeline import HESetting
from .options import choose_model, format_option

LAYER_FIELDS = ("name", "kind", "c_in", "c_out", "kernel", "stride", "height", "width", "gap")
COUNT_FIELDS = ("rotations", "input_rotations", "output_rotations", "other_rotations", "pmult",
                "adds", "rescales", "keys")


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
@click.option("--log-n", type=int, default=None,
              help="log2 of the ring degree N. Default: 16 for inputs over 16x16 pixels, "
                   "14 for smaller ones (raised until one channel's grid fits).")
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
    model total. Without --checkpoint the model is dense."""
    chosen = choose_model(model_name, checkpoint, num_classes, input_shape)
    model, shape, name = chosen.model, chosen.input_shape, chosen.name
    setting = HESetting.for_model(model, shape, cost_model_name, log_n)
    params = setting.params
    masks = nonzero_masks(model, [s.name for s in setting.specs]) if checkpoint else {}
    rows, total, extra = [], OpCount(), {}
    for spec in setting.specs:
        plan = setting.cost_model.plan(spec, params, masks.get(spec.name))
        ops, details = plan.op_count(), plan.details()
        total = total + ops
        counts = ops.as_dict()
        rows.append({**{f: getattr(spec, f) for f in LAYER_FIELDS},
                     **{f: counts[f] for f in COUNT_FIELDS}, **details,
                     "rotation_steps": counts["rotation_steps"]})
        for key, value in details.items():  # the cost model's own integer figures add up
            if isinstance(value, int):
                extra[key] = extra.get(key, 0) + value
    totals = {f: total.as_dict()[f] for f in COUNT_FIELDS} | extra
    totals["key_bytes"] = total.keys * params.rotation_key_bytes
    if fmt == "json":
        click.echo(render(rows, fmt, json_payload={
            "model": name, "input": list(shape), "log_n": params.log_n,
            "cost_model": cost_model_name, "layers": rows, "total": totals}))
        return
    table = [*rows, {"name": "total", **totals}]  # the headers leave rotation_steps out
    click.echo(render(table, fmt, headers=[*LAYER_FIELDS, *COUNT_FIELDS, "key_bytes"]))
    if fmt not in ("csv",):
        click.echo(f"\n{name}, input {'x'.join(map(str, shape))}, N=2^{params.log_n}, "
                   f"{cost_model_name}: {total.keys} rotation keys = "
                   f"{totals['key_bytes'] / 2**20:.1f} MiB", err=True)
