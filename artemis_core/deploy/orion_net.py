"""Convert a trained torch model into Orion's modules (``orion.nn``), weights and masks copied.

The torch model is traced with ``torch.fx``; every leaf module and function is replaced
by its Orion counterpart, and anything else is refused with a one-line error naming the
layer, before Orion makes any key. Two rewrites save levels and are exact:

* a :class:`PolyAct` a·x² + b·x + c whose output reaches only a convolution or linear
  layer (possibly through flatten or average pooling, which commute with scaling)
  becomes x·(x + b/a) + c/a — one level — and its ``a`` is folded into that layer's
  weights (zero weights stay zero: pruning survives); otherwise it is Orion's
  degree-2 polynomial (two levels);
* optionally, a global average pool followed by flatten and a linear classifier becomes
  flatten and one linear layer whose weights are the classifier's divided by the pixel
  count: one level fewer, but many more diagonals (the classes × C·h·w matrix).

Orion itself is imported here on first use, so the rest of Artemis works without it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ArtemisError, SpecError
from ..learning.polyact import PolyAct

SUPPORTED = ("Conv2d, BatchNorm2d, Linear, AvgPool2d, AdaptiveAvgPool2d, Flatten, Identity, "
             "PolyAct, ReLU and residual additions")
#: |a| below this makes b/a and c/a blow up when a PolyAct is folded.
MIN_QUADRATIC = 1e-4


def import_orion():
    """The ``orion`` package, or a one-line error saying how to install it."""
    try:
        import orion
        import orion.nn
    except ImportError as exc:
        raise ArtemisError(f"the orion engine needs orion-fhe 1.0.2 ({exc}); install it with "
                           "bash scripts/install_orion.sh .venv/bin/python") from exc
    return orion


class _Tracer(fx.Tracer):
    """Trace down to leaf modules (PolyAct included), through containers."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, PolyAct) or not any(True for _ in m.children())


@dataclass
class OrionNet:
    """A converted model: the Orion network and, per Orion linear layer, the torch layer
    it came from (``None`` for a pooling layer)."""

    net: nn.Module
    layers: dict[str, str | None]


def convert(model: nn.Module, input_shape: Sequence[int],
            fuse_classifier: bool = True) -> OrionNet:
    """The Orion form of ``model`` (C×H×W inputs ``input_shape``), in eval mode; with
    ``fuse_classifier`` a global pool + flatten + linear becomes one linear layer."""
    orion = import_orion()
    on = orion.nn
    model = model.eval()
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx cannot trace data-dependent control flow
        raise SpecError(f"the orion engine cannot trace {type(model).__name__}: "
                        f"{type(exc).__name__}: {exc}") from exc
    traced = fx.GraphModule(model, graph)
    ShapeProp(traced).propagate(torch.zeros(1, *input_shape))
    modules = dict(traced.named_modules())
    new_modules: dict[str, nn.Module] = {}
    layers: dict[str, str | None] = {}
    polys: list[fx.Node] = []
    for node in list(graph.nodes):
        if node.op in ("placeholder", "output", "get_attr"):
            if node.op == "get_attr":
                raise SpecError(f"layer {node.target!r} reads a tensor attribute; the orion "
                                f"engine supports {SUPPORTED}")
            continue
        if node.op == "call_module":
            module = modules[node.target]
            if isinstance(module, nn.Identity):
                node.replace_all_uses_with(node.args[0])
                graph.erase_node(node)
                continue
            if isinstance(module, PolyAct):
                polys.append(node)
            converted = _convert_module(on, node.target, module)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                layers[node.target] = node.target
        elif _is_add(node):
            converted = on.Add()
        elif _is_flatten(node):
            converted = on.Flatten()
        else:
            raise SpecError(f"operation {node.name!r} ({node.op} {_target_name(node)}) is not "
                            f"supported by the orion engine; supported: {SUPPORTED}")
        name = _fresh_name(new_modules, node.target if node.op == "call_module" else node.name)
        new_modules[name] = converted
        node.op, node.target = "call_module", name
        node.args = tuple(a for a in node.args if isinstance(a, fx.Node))
        node.kwargs = {}
    root = nn.Module()
    for name, module in new_modules.items():
        _set_submodule(root, name, module)
    gm = fx.GraphModule(root, graph)
    if fuse_classifier:
        _fuse_pool_into_linear(gm, on, layers)
    for node in polys:
        _fold_poly(gm, on, node)
    gm.graph.lint()
    gm.recompile()
    net = _wrap(on, gm)
    net.eval()  # batch norms keep their running statistics while Orion fits ranges
    for module in net.modules():
        if type(module).compile is nn.Module.compile:
            # Orion calls compile() on every layer; on one with nothing to encode (Add,
            # Flatten, Mult) that is torch's Module.compile, which wraps it in dynamo
            module.compile = _nothing
    for name, module in gm.named_modules():
        if isinstance(module, on.AvgPool2d) and name not in layers:
            layers[name] = None
    return OrionNet(net, layers)


def _nothing() -> None:
    """Compile nothing."""


def _convert_module(on, name: str, module: nn.Module) -> nn.Module:
    if isinstance(module, nn.Conv2d):
        if module.dilation not in ((1, 1), 1) or module.padding_mode != "zeros" \
                or isinstance(module.padding, str) or len(set(module.stride)) > 1:
            raise SpecError(f"layer {name!r} (Conv2d with dilation {module.dilation}, padding "
                            f"{module.padding!r} {module.padding_mode}, stride {module.stride}) "
                            "is not supported by the orion engine: it needs dilation 1, "
                            "integer zero padding and equal strides")
        out = on.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                        module.stride, module.padding, groups=module.groups,
                        bias=module.bias is not None)
        return _copy(out, module)
    if isinstance(module, nn.Linear):
        return _copy(on.Linear(module.in_features, module.out_features,
                               bias=module.bias is not None), module)
    if isinstance(module, nn.BatchNorm2d):
        out = on.BatchNorm2d(module.num_features, module.eps, affine=module.affine)
        out.load_state_dict(module.state_dict())
        return out
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return on.AdaptiveAvgPool2d(module.output_size)
    if isinstance(module, nn.AvgPool2d):
        return on.AvgPool2d(module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise SpecError(f"layer {name!r}: Flatten({module.start_dim}, {module.end_dim}) is "
                            "not supported by the orion engine; only Flatten(1, -1)")
        return on.Flatten()
    if isinstance(module, nn.ReLU):
        return on.ReLU()
    if isinstance(module, PolyAct):
        return on.Activation(module.coefficients.detach().double().tolist())
    raise SpecError(f"layer {name!r} ({type(module).__name__}) is not supported by the orion "
                    f"engine; supported: {SUPPORTED}")


def _copy(out: nn.Module, module: nn.Module) -> nn.Module:
    """Weights as the model computes with them (a pruning mask already applied)."""
    with torch.no_grad():
        out.weight.copy_(module.weight.detach())
        if module.bias is not None:
            out.bias.copy_(module.bias.detach())
    return out


def _is_add(node: fx.Node) -> bool:
    tensors = [a for a in node.args if isinstance(a, fx.Node)]
    return (node.op == "call_function" and node.target in (operator.add, torch.add)
            and len(tensors) == 2 and len(node.args) == 2 and not node.kwargs)


def _is_flatten(node: fx.Node) -> bool:
    if node.op == "call_function" and node.target is torch.flatten \
            or node.op == "call_method" and node.target == "flatten":
        rest = list(node.args[1:]) + list(node.kwargs.values())
        return rest in ([1], [1, -1])
    return False


def _target_name(node: fx.Node) -> str:
    target = node.target
    return getattr(target, "__name__", str(target))


def _fresh_name(taken: dict, name: str) -> str:
    base, k = str(name), 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    *parents, leaf = name.split(".")
    for part in parents:
        if not hasattr(root, part):
            root.add_module(part, nn.Module())
        root = getattr(root, part)
    root.add_module(leaf, module)


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _module(gm: fx.GraphModule, node: fx.Node | None) -> nn.Module | None:
    return gm.get_submodule(node.target) if node is not None and node.op == "call_module" \
        else None


def _fuse_pool_into_linear(gm: fx.GraphModule, on, layers: dict) -> None:
    """AdaptiveAvgPool2d(1) → Flatten → Linear becomes Flatten → Linear(C·H·W)."""
    for node in list(gm.graph.nodes):
        pool = _module(gm, node)
        if not isinstance(pool, on.AdaptiveAvgPool2d) or pool.output_size != (1, 1):
            continue
        flatten = _only_user(node)
        linear_node = _only_user(flatten) if flatten is not None else None
        linear = _module(gm, linear_node)
        if not isinstance(_module(gm, flatten), on.Flatten) or not isinstance(linear, on.Linear):
            continue
        shape = node.args[0].meta["tensor_meta"].shape  # 1×C×H×W
        pixels = shape[2] * shape[3]
        fused = on.Linear(linear.in_features * pixels, linear.out_features,
                          bias=linear.bias is not None)
        with torch.no_grad():
            weight = linear.weight.detach() / pixels
            fused.weight.copy_(weight[:, :, None].expand(-1, -1, pixels).reshape(
                linear.out_features, -1))
            if linear.bias is not None:
                fused.bias.copy_(linear.bias.detach())
        _set_submodule(gm, linear_node.target, fused)
        flatten.args = (node.args[0],)
        gm.graph.erase_node(node)
        gm.delete_submodule(node.target)


def _fold_poly(gm: fx.GraphModule, on, node: fx.Node) -> None:
    """Fold a PolyAct's ``a`` into the only linear layer its output reaches, if any."""
    act = gm.get_submodule(node.target)
    a, b, c = act.coeffs
    if abs(a) < MIN_QUADRATIC:
        raise SpecError(f"layer {node.target!r}: quadratic coefficient a={a:.3g} is too close "
                        f"to 0 to evaluate (|a| >= {MIN_QUADRATIC} needed)")
    user = _only_user(node)
    while isinstance(_module(gm, user), (on.Flatten, on.AvgPool2d)):
        user = _only_user(user)
    target = _module(gm, user)
    if not isinstance(target, (on.Conv2d, on.Linear)) or isinstance(target, on.AvgPool2d):
        return  # feeds a residual addition or the output: Orion's polynomial, two levels
    with torch.no_grad():
        target.weight.mul_(a)
    _set_submodule(gm, node.target, _scaled_quad(on)(b / a, c / a, target))


def _scaled_quad(on) -> Callable[[float, float, nn.Module], nn.Module]:
    class ScaledQuad(on.Module):
        """z = x·(x + shift) + offset: one ciphertext product, one level.

        The product's scale Δ²/q is declared Δ again (as Orion's Quad does), which
        multiplies z by Δ/q: a 1e-3 error at a 2^25 scale. It is undone exactly by
        multiplying the consumer's diagonals by q/Δ (before Orion encodes them) and
        adding the offset as offset·Δ/q.
        """

        def __init__(self, shift: float, offset: float, consumer: nn.Module) -> None:
            super().__init__()
            self.shift, self.offset = float(shift), float(offset)
            self._consumer = [consumer]  # a list: not a submodule, this stays a leaf
            self.factor = 1.0
            self.set_depth(1)

        def extra_repr(self) -> str:
            return super().extra_repr() + f", x·(x{self.shift:+.4g}){self.offset:+.4g}"

        def compile(self) -> None:
            """Compensate the rescale by the prime at this level in the consumer."""
            prime = self.scheme.encoder.get_moduli_chain()[self.level]
            self.factor = prime / self.scheme.params.get_default_scale()
            for block in self._consumer[0].diagonals.values():
                for index, values in block.items():
                    block[index] = [v * self.factor for v in values]

        def forward(self, x):
            if not self.he_mode:
                return x * (x + self.shift) + self.offset
            if x.level() != self.level:
                raise RuntimeError(f"ScaledQuad compiled for level {self.level}, input at "
                                   f"level {x.level()}")
            out = x * (x + self.shift)
            out.set_scale(x.scale())
            return out + self.offset / self.factor

    return ScaledQuad


def _wrap(on, gm: fx.GraphModule) -> nn.Module:
    class Converted(on.Module):
        """The converted graph as one Orion network."""

        def __init__(self, graph: fx.GraphModule) -> None:
            super().__init__()
            self.body = graph

        def forward(self, x):
            return self.body(x)

    return Converted(gm)


def depth(orion_net: OrionNet) -> int:
    """Levels the converted network consumes along its deepest path, as Orion counts them
    (a batch norm right after a linear layer is fused into it and costs nothing)."""
    orion = import_orion()
    on = orion.nn
    gm = orion_net.net.body
    levels: dict[fx.Node, int] = {}
    for node in gm.graph.nodes:
        before = max((levels[a] for a in node.all_input_nodes), default=0)
        module = _module(gm, node)
        levels[node] = before + (_module_depth(on, gm, node, module) if module else 0)
    return max(levels.values())


def _module_depth(on, gm: fx.GraphModule, node: fx.Node, module: nn.Module) -> int:
    if isinstance(module, on.BatchNorm2d):
        parent = node.all_input_nodes[0]
        fused = isinstance(_module(gm, parent), (on.Conv2d, on.Linear)) \
            and len(parent.users) == 1
        return 0 if fused else module.depth
    if isinstance(module, on.ReLU):
        signs = sum(int(d).bit_length() for d in module.degrees)  # ceil(log2(d+1))
        return signs + 2  # the prescale and the final product
    return int(module.depth or 0)
