"""Layer specs of a torch model, read from one forward pass with hooks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import SpecError, first_line
from .specs import ConvSpec

SUPPORTED = ("Conv2d with groups=1, dilation=1, stride 1 or 2, odd square kernel and "
             "'same' zero padding (kernel//2); Linear on flat features")
#: Pooling with no exact CKKS form (a maximum needs comparisons); average pooling is fine.
UNSUPPORTED_POOLING = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
                       nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d,
                       nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)


def _conv_spec(name: str, conv: nn.Conv2d, x: torch.Tensor, model_hw: tuple[int, int],
               producers: list[ConvSpec]) -> ConvSpec:
    """The spec of one Conv2d call on input ``x`` (1×C×H×W)."""
    k = conv.kernel_size[0]
    padding = (k // 2, k // 2) if conv.padding == "same" else conv.padding
    problems = []
    if conv.groups != 1:
        problems.append(f"groups={conv.groups}")
    if conv.dilation != (1, 1):
        problems.append(f"dilation={conv.dilation}")
    if conv.kernel_size != (k, k) or k % 2 == 0:
        problems.append(f"kernel_size={conv.kernel_size}")
    if conv.stride not in ((1, 1), (2, 2)):
        problems.append(f"stride={conv.stride}")
    if padding != (k // 2, k // 2) or conv.padding_mode != "zeros":
        problems.append(f"padding={conv.padding} ({conv.padding_mode})")
    if problems:
        raise SpecError(f"layer {name!r} (Conv2d) has {', '.join(problems)}; supported: "
                        f"{SUPPORTED}")
    h, w = x.shape[-2:]
    stride = conv.stride[0]
    if stride == 2 and (h % 2 or w % 2):
        raise SpecError(f"layer {name!r}: stride 2 on an odd {h}x{w} input leaves the slot "
                        "grid; supported: even input sizes for stride-2 layers")
    if model_hw[0] % h or model_hw[1] % w or model_hw[0] // h != model_hw[1] // w:
        raise SpecError(f"layer {name!r}: input {h}x{w} is not the {model_hw[0]}x{model_hw[1]} "
                        "model input thinned by one integer factor (the slot grid never repacks)")
    gap = model_hw[0] // h
    # The input keeps the layout of the latest conv whose output lands on this grid with
    # these channels (the residual add needs both operands in one layout anyway).
    layout = next((max(p.c_in, p.c_out) for p in reversed(producers)
                   if p.kind == "conv" and p.c_out == conv.in_channels and p.gap * p.stride == gap
                   and -(-p.height // p.stride) == h), 0)
    return ConvSpec(name, conv.in_channels, conv.out_channels, k, stride, k // 2, int(h),
                    int(w), gap, bias=conv.bias is not None, layout_channels=layout)


def extract_specs(model: nn.Module, input_shape: Sequence[int]) -> list[ConvSpec]:
    """Specs of every Conv2d and Linear in execution order, named as in
    ``model.named_modules()``; other layers (BN, ReLU, add, pooling) are left to run
    in the clear. Unsupported convolutions raise :class:`SpecError`."""
    if len(input_shape) != 3:
        raise SpecError(f"input shape {tuple(input_shape)} must be C x H x W")
    model_hw = (int(input_shape[1]), int(input_shape[2]))
    specs: list[ConvSpec] = []
    seen: set[str] = set()

    def record(name: str, module: nn.Module, args: tuple) -> None:
        if name in seen:
            raise SpecError(f"layer {name!r} runs more than once per forward pass; "
                            "supported: each conv/linear module used once")
        seen.add(name)
        x = args[0]
        if isinstance(module, nn.Conv2d):
            specs.append(_conv_spec(name, module, x, model_hw, specs))
        elif isinstance(module, nn.Linear):
            if x.dim() != 2:
                raise SpecError(f"layer {name!r} (Linear) gets a {x.dim()}-d input; "
                                f"supported: {SUPPORTED}")
            specs.append(ConvSpec(name, module.in_features, module.out_features, 1, 1, 0,
                                  kind="linear", bias=module.bias is not None))
        else:
            raise SpecError(f"layer {name!r} is a {type(module).__name__}; supported: "
                            f"{SUPPORTED}")

    def refuse_pooling(name: str, module: nn.Module) -> None:
        raise SpecError(f"layer {name!r} is a {type(module).__name__}, which CKKS cannot "
                        "evaluate exactly; supported pooling: AvgPool2d, AdaptiveAvgPool2d")

    handles = [
        module.register_forward_pre_hook(lambda m, args, name=name: record(name, m, args))
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))
    ] + [
        module.register_forward_pre_hook(lambda m, args, name=name: refuse_pooling(name, m))
        for name, module in model.named_modules() if isinstance(module, UNSUPPORTED_POOLING)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            param = next(model.parameters(), None)
            dtype = param.dtype if param is not None else torch.float32
            model(torch.zeros(1, *input_shape, dtype=dtype))
    except RuntimeError as exc:  # torch's shape errors: the input does not fit the model
        raise SpecError(f"input shape {tuple(input_shape)} does not fit the model: "
                        f"{first_line(exc)}") from exc
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return specs
