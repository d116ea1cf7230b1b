"""Dense counts and group savings of the built-in cost models, side by side.

For dense ResNet-20 (N=2^16), digits-resnet and he-cnn (N=2^14, their defaults) prints,
per cost model, the rotations (split as the model splits them), PMult and keys; then,
per group kind the model offers, how many groups there are, how many save at least one
rotation when zeroed alone, and the rotations and PMults all groups of the kind save
summed over groups (an upper bound: savings are not additive under bsgs). These are the
figures of docs/cost-model.md.

    python benchmarks/cost_models_side_by_side.py
"""

from __future__ import annotations

from artemis_core import HEParams, OpCount
from artemis_core.he.extract import extract_specs
from artemis_core.learning.zoo import build_model
from artemis_core.registry import get

MODELS = (("resnet20", (3, 32, 32), 16), ("digits-resnet", (1, 8, 8), 14),
          ("he-cnn", (1, 8, 8), 14))
COST_MODELS = ("gazelle", "bsgs", "bsgs-best")


def main() -> None:
    for model_name, shape, log_n in MODELS:
        specs = extract_specs(build_model(model_name, 10, shape, seed=0), shape)
        params = HEParams(log_n)
        print(f"\n{model_name} (dense, N=2^{log_n})")
        for name in COST_MODELS:
            model = get("cost_model", name)()
            total = sum((model.count(s, params) for s in specs), OpCount())
            print(f"  {name:9s} rotations {total.rotations:5d} (input/baby "
                  f"{total.input_rotations}, output/giant {total.output_rotations}, other "
                  f"{total.other_rotations}), PMult {total.pmult}, keys {total.keys}")
            for kind in model.group_kinds:
                groups = saving = rotations = pmult = 0
                for spec in specs:
                    index = model.group_index(spec, params, kind)
                    saved = model.group_savings(spec, params, index)
                    groups += len(index)
                    saving += int((saved.rotations > 0).sum())
                    rotations += int(saved.rotations.sum())
                    pmult += int(saved.pmult.sum())
                print(f"      {kind:10s} {groups:6d} groups, {saving:5d} save a rotation "
                      f"alone; summed savings {rotations} rotations, {pmult} PMult")


if __name__ == "__main__":
    main()
