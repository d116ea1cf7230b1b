"""Built-in model plugins: registered, right shapes, HE-compatible layers."""

import pytest
import torch
from torch import nn

from artemis_core.learning.zoo import build_model
from artemis_core.registry import get, get_registry

MODELS = ["digits-resnet", "mnist-resnet", "resnet20", "resnet32", "resnet56", "resnet18",
          "small-cnn"]


def test_every_model_is_registered():
    assert set(MODELS) <= set(get_registry().names("model"))


@pytest.mark.parametrize("name", MODELS)
def test_logits_have_one_column_per_class(name):
    info = get("model", name)
    model = build_model(name, 7, info.default_input).eval()
    out = model(torch.randn(2, *info.default_input))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", MODELS)
def test_convs_are_same_padded_and_unbiased(name):
    info = get("model", name)
    convs = [m for m in build_model(name, 10, info.default_input).modules()
             if isinstance(m, nn.Conv2d)]
    assert convs
    for conv in convs:
        assert conv.padding == (conv.kernel_size[0] // 2,) * 2
        assert conv.stride in ((1, 1), (2, 2))
        assert conv.groups == 1 and conv.dilation == (1, 1)
        assert conv.bias is None  # every conv is followed by BN


@pytest.mark.parametrize("name, depth, stages", [
    ("resnet20", 20, 3), ("resnet32", 32, 3), ("resnet56", 56, 3), ("resnet18", 18, 4),
])
def test_resnet_depth_counts_weighted_layers(name, depth, stages):
    model = build_model(name, 10, (3, 32, 32))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    three = [c for c in convs if c.kernel_size == (3, 3)]
    shortcuts = [c for c in convs if c.kernel_size == (1, 1)]
    # depth = 3×3 convs + the classifier; one 1×1 shortcut per stage change ("option B")
    assert len(three) + 1 == depth
    assert len(shortcuts) == stages - 1


def test_cifar_resnet_widths_and_downsampling():
    model = build_model("resnet20", 10, (3, 32, 32)).eval()
    seen = {}
    for name in ("layer1", "layer2", "layer3"):
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape[1:])))
    model(torch.randn(1, 3, 32, 32))
    assert seen == {"layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)}


def test_mnist_resnet_has_three_stages_down_to_7x7():
    model = build_model("mnist-resnet", 10, (1, 28, 28)).eval()
    seen = {}
    for name in ("layer1", "layer2", "layer3"):
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape[1:])))
    model(torch.randn(1, 1, 28, 28))
    assert seen == {"layer1": (16, 28, 28), "layer2": (32, 14, 14), "layer3": (64, 7, 7)}
    assert len([m for m in model.modules() if isinstance(m, nn.Conv2d)]) == 9  # ResNet-8 + 2


def test_models_accept_other_input_shapes():
    model = build_model("resnet20", 10, (1, 8, 8)).eval()
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_seeded_builds_are_identical_and_leave_global_rng_alone():
    state = torch.get_rng_state()
    a = build_model("digits-resnet", 10, (1, 8, 8), seed=3)
    b = build_model("digits-resnet", 10, (1, 8, 8), seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
