"""The pruning pipeline shared by every strategy.

dense training (or a given checkpoint) → regularized training with the cost-weighted
group Lasso (strategies with ``regularized = True``) → global selection of groups until
the rotation target is met → masks through ``torch.nn.utils.prune`` → fine-tuning with the
masks fixed. Each step is resumable: dense and pruned checkpoints are written atomically,
and training resumes from its last finished epoch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..errors import ArtemisError
from ..he.cost_model import CostModel
from ..he.extract import extract_specs
from ..he.latency import load_calibration
from ..he.params import HEParams, default_log_n
from ..he.specs import ConvSpec, OpCount
from ..learning import checkpoint as ckpt
from ..learning.catalog import Dataset, Split, subset
from ..learning.training import EpochRecord, TrainConfig, evaluate, train
from ..learning.zoo import build_model
from ..registry import get, get_registry
from .budget import DEFAULT_MAX_SPARSITY, Selection, Target, parse_target, select
from .channels import channel_chains, propagate, shrink
from .costs import GROUP_COSTS, penalty_costs
from .groups import LayerGroups, batchnorm_after, collect_groups, folded_weights
from .masking import apply_masks, current_masks, nonzero_masks
from .regularizer import GroupLasso
from .strategy import Strategy

SCHEDULES = ("one-shot", "gradual")
PENALTIES = ("targeted", "all")


@dataclass(frozen=True)
class PruneConfig:
    """Settings of the pruning phases (defaults suit digits; see docs/strategies.md)."""

    #: Group-Lasso strength (unit-free, see docs/strategies.md "λ and the normalisation").
    lam: float = 10.0
    #: Epochs before the (last) selection: penalised for regularized strategies, plain
    #: training for the others, so every strategy gets the same budget.
    reg_epochs: int = 10
    finetune_epochs: int = 10
    lr: float = 0.05
    batch_size: int = 64
    max_sparsity: float = DEFAULT_MAX_SPARSITY
    cost_model: str = "gazelle"
    log_n: int | None = None
    #: c_g in the penalty: the estimated seconds ("latency") a group saves under the
    #: cost model at the calibrated per-op prices, or the "rotations" it saves.
    group_cost: str = "latency"
    #: "one-shot": select once after the regularized epochs; "gradual": ``steps``
    #: selections toward the target (cubic, as AGP), the epochs split between them.
    schedule: str = "gradual"
    steps: int = 3
    #: "targeted": penalise only the groups the selector would remove now (re-ranked
    #: every epoch), with λ growing from 0; "all": every penalisable group, constant λ.
    penalty: str = "targeted"
    #: Random crops and flips in both phases (as in dense training; see TrainConfig).
    augment: bool = False
    #: Train both phases on this many training images (a fixed draw, as TrainConfig's),
    #: to size a comparison on a large dataset; None: all of them.
    train_subset: int | None = None
    #: A target the strategy cannot reach prunes as far as it can (the result says so)
    #: instead of raising BudgetError.
    best_effort: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (("group_cost", GROUP_COSTS), ("schedule", SCHEDULES),
                              ("penalty", PENALTIES)):
            if getattr(self, name) not in allowed:
                raise ArtemisError(
                    f"{name}={getattr(self, name)!r}; allowed: {', '.join(allowed)}")
        if self.lam < 0:
            raise ArtemisError(f"lam={self.lam} must be non-negative")
        if not 0 < self.max_sparsity <= 1:
            raise ArtemisError(f"max_sparsity={self.max_sparsity} must be in (0, 1]")
        for name in ("reg_epochs", "finetune_epochs"):
            if getattr(self, name) < 0:
                raise ArtemisError(f"{name}={getattr(self, name)} must be non-negative")
        if self.steps < 1:
            raise ArtemisError(f"steps={self.steps} must be at least 1")
        if self.train_subset is not None and self.train_subset < 1:
            raise ArtemisError(f"train_subset={self.train_subset} must be at least 1")

    def phases(self, regularized: bool) -> tuple[int, int]:
        """(regularized, fine-tuning) epochs of a strategy: the same budget after the dense
        model for every strategy; one without a regularized phase fine-tunes for all of it."""
        if regularized and self.lam and self.reg_epochs:
            return self.reg_epochs, self.finetune_epochs
        return 0, self.reg_epochs + self.finetune_epochs


@dataclass(frozen=True)
class HESetting:
    """The layers, parameters and cost model a model is counted under; with ``chains``
    (producer → consumer convs), filters a mask zeroes count as removed physically."""

    specs: list[ConvSpec]
    params: HEParams
    cost_model: CostModel
    chains: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: nn.Module, input_shape: tuple[int, int, int],
                  cost_model: str = "gazelle", log_n: int | None = None) -> HESetting:
        """Extract the specs; default N from the input size (:func:`default_log_n`)."""
        params = HEParams(log_n if log_n is not None else default_log_n(input_shape))
        return cls(extract_specs(model, input_shape), params, get("cost_model", cost_model)())

    def count(self, masks: dict[str, Any] | None = None) -> OpCount:
        """Total ops of the model under ``masks`` (missing layers are dense)."""
        specs, masks = self.specs, masks or {}
        if self.chains:
            specs, masks = shrink(specs, masks, self.chains)
        return sum((self.cost_model.count(s, self.params, masks.get(s.name))
                    for s in specs), OpCount())

    def count_weights(self, model: nn.Module) -> OpCount:
        """Total ops with each layer's mask read off its weights (weight != 0)."""
        return self.count(nonzero_masks(model, [s.name for s in self.specs]))


def he_metrics(ops: OpCount, dense: OpCount, params: HEParams) -> dict[str, Any]:
    """The HE columns every result reports."""
    return {
        "rotations": ops.rotations,
        "dense_rotations": dense.rotations,
        "rotation_reduction": dense.rotations / max(ops.rotations, 1),
        "pmult": ops.pmult,
        "adds": ops.adds,
        "rescales": ops.rescales,
        "keys": ops.keys,
        "key_bytes": params.rotation_keys_bytes(ops.keys),
        "log_n": params.log_n,
        "ops": ops.as_dict(),
    }


def counts_by_cost_model(net: nn.Module, setting: HESetting) -> dict[str, dict[str, Any]]:
    """The model's rotations, reduction, PMult and keys (mask = weight != 0) under every
    registered cost model that supports its layers, at the same parameters."""
    out = {}
    for name in get_registry().names("cost_model"):
        other = HESetting(setting.specs, setting.params, get("cost_model", name)(),
                          setting.chains)
        try:
            ops, dense = other.count_weights(net), other.count()
        except ArtemisError:  # a plugin that does not support these layers
            continue
        out[name] = {"rotations": ops.rotations, "dense_rotations": dense.rotations,
                     "rotation_reduction": dense.rotations / max(ops.rotations, 1),
                     "pmult": ops.pmult, "keys": ops.keys}
    return out


def fit_dense(data: Dataset, model_name: str, config: TrainConfig, out: Path,
              progress: bool = True, split: Split | None = None,
              ) -> tuple[dict[str, Any], list[EpochRecord]]:
    """Train ``model_name`` densely on the training part of ``data`` (``split``: what is
    held out for validation) and save it at ``out``; returns its metrics (validation and
    test accuracy, HE op counts) and the training history. Training state is kept in
    ``OUT.state`` after every epoch, so an interrupted run resumes."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    split = split or Split()
    net = build_model(model_name, data.num_classes, data.input_shape, seed=config.seed)
    state = out.with_name(out.name + ".state")
    train_set = data.split("train", split)
    history = train(net, train_set, config, progress=progress, checkpoint_path=state)
    setting = HESetting.for_model(net, data.input_shape)
    dense_ops = setting.count()
    metrics = {
        "model": model_name, "dataset": data.name, "seed": config.seed,
        "accuracy": evaluate(net, data.split("test")),
        "val_accuracy": evaluate(net, data.split("validation", split)),
        "train_accuracy": evaluate(net, subset(train_set, config.train_subset)),
        "split": asdict(split),
        "wall_seconds": sum(r.seconds for r in history),
        "config": asdict(config),
        **he_metrics(dense_ops, dense_ops, setting.params),
    }
    ckpt.save(ckpt.Checkpoint.from_model(
        net, model=model_name, dataset=data.name, num_classes=data.num_classes,
        input_shape=data.input_shape, strategy="dense", metrics=metrics), out)
    state.unlink(missing_ok=True)
    return metrics, history


def train_dense(model: str | None, dataset: str, seed: int, epochs: int | None, out: Path,
                data_root: str | None = None, progress: bool = True, split: Split | None = None,
                augment: bool = False, train_subset: int | None = None) -> dict[str, Any]:
    """The dense checkpoint at ``out``: trained with default settings (``epochs``,
    ``augment`` and ``train_subset`` aside) on ``split``'s training part, or reused when a
    previous run already wrote it. Returns its metrics."""
    if Path(out).exists():
        return ckpt.load(out).metrics
    data = get("dataset", dataset)(data_root)
    config = TrainConfig(seed=seed, augment=augment, train_subset=train_subset,
                         **({} if epochs is None else {"epochs": epochs}))
    return fit_dense(data, model or data.default_model, config, out, progress, split)[0]


def schedule_goals(target: Target, dense_rotations: int, config: PruneConfig) -> list[Target]:
    """The rotation goals of the selections: the target alone (one-shot), or ``steps``
    goals on the cubic curve of AGP (Zhu & Gupta 2017) from dense to the target."""
    if config.schedule == "one-shot" or config.steps == 1 or target.sparsity is not None:
        return [target]  # (a sparsity target, for matched-sparsity baselines, is one-shot)
    goal = target.rotations_for(dense_rotations)
    fractions = [1 - (1 - (i + 1) / config.steps) ** 3 for i in range(config.steps)]
    counts = [int(dense_rotations - (dense_rotations - goal) * f) for f in fractions[:-1]]
    return [Target(str(c), rotations=c) for c in counts] + [target]


@dataclass
class Pruner:
    """A model with its HE setting, strategy and groups: selects and masks groups."""

    net: nn.Module
    strategy: Strategy
    setting: HESetting
    layers: list[LayerGroups]
    config: PruneConfig
    batchnorms: dict[str, nn.Module]
    #: producer → consumer convs whose zeroed filters are removed physically (filter)
    chains: Mapping[str, str]

    @classmethod
    def for_model(cls, net: nn.Module, input_shape: tuple[int, int, int], strategy: str,
                  config: PruneConfig) -> Pruner:
        """Check every layer (HE-compatible) and collect the strategy's groups."""
        chosen = get("strategy", strategy)()
        setting = HESetting.for_model(net, input_shape, config.cost_model, config.log_n)
        layers = collect_groups(net, setting.specs, setting.params, setting.cost_model, chosen)
        bns = batchnorm_after(net, [lg.spec.name for lg in layers], input_shape)
        chains = channel_chains(net) if chosen.removes_channels else {}
        return cls(net, chosen, setting, layers, config, bns, chains)

    def select(self, goal: Target) -> Selection:
        """The groups to prune now to meet ``goal``, on top of the installed masks,
        ranked on the BN-folded weights."""
        return select(self.layers, self.strategy, self.setting.specs, self.setting.params,
                      self.setting.cost_model, goal, self.config.max_sparsity,
                      best_effort=self.config.best_effort, chains=self.chains,
                      base=current_masks(self.net),
                      weights=folded_weights(self.layers, self.batchnorms))

    def lasso(self) -> GroupLasso | None:
        """The penalty, or ``None`` when the strategy or λ asks for none."""
        if not (self.strategy.regularized and self.config.lam):
            return None
        calibration = load_calibration() if self.config.group_cost == "latency" else None
        costs = penalty_costs(self.layers, self.strategy, self.config.max_sparsity,
                              self.config.group_cost, calibration)
        return GroupLasso(self.layers, self.config.lam, costs, self.batchnorms)


class _PenaltyHooks:
    """Training hooks of one regularized step: a proximal step after every optimizer
    step, the active groups re-chosen after every epoch (targeted).

    λ is the penalty of the whole step: step t of T applies the share λ·(2t − 1)/T² of it
    (targeted: growing linearly from 0, as Torch-Pruning's growing regularization) or
    λ/T (all groups), so the shares add up to λ whatever the epochs, batch size, data
    size or learning rate.
    """

    def __init__(self, pruner: Pruner, lasso: GroupLasso, goal: Target) -> None:
        self.pruner, self.lasso, self.goal = pruner, lasso, goal
        self.targeted = pruner.config.penalty == "targeted"
        self.retarget()

    def retarget(self, *_: Any) -> None:
        self.lasso.target(self.pruner.select(self.goal).masks if self.targeted else None)

    def after_step(self, model: nn.Module, step: int, total: int, lr: float) -> None:
        share = (2 * step - 1) / total**2 if self.targeted else 1 / total
        self.lasso.proximal(share)


def prune_model(net: nn.Module, input_shape: tuple[int, int, int],
                train_set: TensorDataset | None, strategy: str, target: str, seed: int,
                config: PruneConfig, progress: bool = True,
                state: Path | None = None) -> tuple[Selection, HESetting]:
    """Train (regularized if the strategy asks; resumable from ``state``), select groups
    to meet ``target`` and install the masks on ``net`` in place, once or in ``steps``
    (``config.schedule``). Masks already on ``net`` are kept (they compose). Layers and
    target are checked before any training. Fine-tuning is left to the caller."""
    parsed = parse_target(target)
    pruner = Pruner.for_model(net, input_shape, strategy, config)
    selection = pruner.select(parsed)  # reachable? (raises BudgetError before training)
    goals = schedule_goals(parsed, selection.dense_ops.rotations, config)
    lasso = pruner.lasso()
    reg_epochs, _ = config.phases(pruner.strategy.regularized)
    for step, goal in enumerate(goals):
        epochs = reg_epochs // len(goals) + (step < reg_epochs % len(goals))
        if epochs and train_set is not None:
            hooks = _PenaltyHooks(pruner, lasso, goal) if lasso is not None else None
            path = state if state is None or len(goals) == 1 else \
                state.with_suffix(f".{step}{state.suffix}")
            train(net, train_set, _phase(config, epochs, seed), progress=progress,
                  after_step=hooks and hooks.after_step, epoch_end=hooks and hooks.retarget,
                  checkpoint_path=path)
        selection = pruner.select(goal)
        masks = selection.masks
        if pruner.chains:  # the consumers lose the removed filters' input channels too
            shapes = {s.name: torch.Size(s.weight_shape) for s in pruner.setting.specs}
            masks = propagate(masks, pruner.chains, shapes)
        apply_masks(net, masks)
    setting = replace(pruner.setting, chains=pruner.chains) if pruner.chains else pruner.setting
    return selection, setting


def check_prunable(model: str, num_classes: int, input_shape: tuple[int, int, int],
                   strategy: str, target: str, config: PruneConfig) -> None:
    """Fail in one line, before any training, when ``model`` has a layer HE cannot run
    or ``strategy`` cannot reach ``target`` on it (checked on the untrained weights)."""
    net = build_model(model, num_classes, input_shape)
    Pruner.for_model(net, input_shape, strategy, config).select(parse_target(target))


def _phase(config: PruneConfig, epochs: int, seed: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, lr=config.lr, batch_size=config.batch_size, seed=seed,
                       augment=config.augment, train_subset=config.train_subset)


def prune_run(strategy: str, target: str, dense_checkpoint: Path, seed: int,
              epochs: int | None = None, out: Path | None = None, progress: bool = True,
              config: PruneConfig | Mapping[str, Any] | None = None,
              data_root: str | None = None, split: Split | None = None,
              cost_model: str | None = None) -> dict[str, Any]:
    """Prune the dense checkpoint with ``strategy`` to ``target`` ("4x", a rotation count
    or a weight sparsity "90%"), fine-tune, optionally save the pruned checkpoint, and
    return flat metrics. ``config`` is a :class:`PruneConfig` or its fields; ``epochs``
    overrides both the regularized and the fine-tuning epochs, ``cost_model`` the
    config's. Training reads the training part of ``split``, ``val_accuracy`` its
    validation part, and ``accuracy`` the test set, read once at the end. With ``out``,
    both training phases keep their state beside it, so a rerun after an interruption
    resumes where it stopped. The metrics name the cost model and hold the pruned
    model's counts under every registered one (``by_cost_model``), so a report can put
    them side by side."""
    if isinstance(config, Mapping):
        config = PruneConfig(**config)
    config = config or PruneConfig()
    if epochs is not None:
        config = PruneConfig(**{**asdict(config), "reg_epochs": epochs, "finetune_epochs": epochs})
    if cost_model is not None:
        config = PruneConfig(**{**asdict(config), "cost_model": cost_model})
    split = split or Split()
    start = time.perf_counter()
    net, dense = ckpt.load_model(dense_checkpoint)
    if dense.masks:  # a pruned checkpoint: keep its masks fixed, the new ones compose
        apply_masks(net, {name: mask.float() for name, mask in dense.masks.items()})
    data = get("dataset", dense.dataset)(data_root)
    train_set = data.split("train", split)
    states = [None, None] if out is None else [
        Path(out).with_name(f"{Path(out).name}.{phase}.state") for phase in ("reg", "finetune")]
    selection, setting = prune_model(net, dense.input_shape, train_set, strategy, target, seed,
                                     config, progress, states[0])
    # the masked model before fine-tuning: did the training find the structure? (a
    # diagnostic: nothing is selected on it)
    masked_val_accuracy = evaluate(net, data.split("validation", split))
    masked_accuracy = evaluate(net, data.split("test"))
    reg_epochs, finetune_epochs = config.phases(get("strategy", strategy).regularized)
    if finetune_epochs:
        train(net, train_set, _phase(config, finetune_epochs, seed), progress=progress,
              checkpoint_path=states[1])
    ops = setting.count_weights(net)
    val_accuracy = evaluate(net, data.split("validation", split))
    accuracy = evaluate(net, data.split("test"))
    # the reference is the original dense model, also when re-pruning a pruned checkpoint
    reference = {key: dense.metrics.get(f"dense_{key}" if dense.masks else key)
                 for key in ("accuracy", "val_accuracy")}
    dense_accuracy = reference["accuracy"]
    metrics = {
        "model": dense.model, "dataset": dense.dataset, "strategy": strategy,
        "target": target, "seed": seed, "accuracy": accuracy, "val_accuracy": val_accuracy,
        "masked_accuracy": masked_accuracy, "masked_val_accuracy": masked_val_accuracy,
        "dense_accuracy": dense_accuracy, "dense_val_accuracy": reference["val_accuracy"],
        "delta_accuracy": None if dense_accuracy is None else accuracy - dense_accuracy,
        "sparsity": selection.sparsity, "groups_pruned": selection.groups_pruned,
        "reached": selection.reached, "reg_epochs": reg_epochs,
        "finetune_epochs": finetune_epochs, "epochs_after_dense": reg_epochs + finetune_epochs,
        "augment": config.augment, "split": asdict(split),
        "pruned_from": dense.strategy if dense.masks else None,
        "lam": config.lam, "schedule": config.schedule, "steps": config.steps,
        "penalty": config.penalty, "group_cost": config.group_cost,
        "wall_seconds": time.perf_counter() - start, "cost_model": config.cost_model,
        **he_metrics(ops, selection.dense_ops, setting.params),
        "by_cost_model": counts_by_cost_model(net, setting),
    }
    if out is not None:
        ckpt.save(ckpt.Checkpoint.from_model(
            net, model=dense.model, dataset=dense.dataset, num_classes=dense.num_classes,
            input_shape=dense.input_shape, strategy=strategy, target=target,
            metrics=metrics), out)
        for state in [*states, *Path(out).parent.glob(f"{Path(out).name}.reg.*.state")]:
            state.unlink(missing_ok=True)
    return metrics
