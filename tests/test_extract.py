"""Layer extraction: one forward pass with hooks gives the specs the planner needs."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from artemis_core import ConvSpec, SpecError
from artemis_core.he.extract import extract_specs


class Residual(nn.Module):
    """conv-BN-ReLU stem, a stride-2 block with a 1×1 shortcut, pooling and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.conv_a = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.conv_b = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.short = nn.Conv2d(8, 16, 1, stride=2)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.conv_b(torch.relu(self.conv_a(x))) + self.short(x))
        return self.head(x.mean(dim=(2, 3)))


def test_specs_follow_the_forward_pass():
    specs = extract_specs(Residual(), (3, 16, 16))
    assert specs == [
        ConvSpec("stem.0", 3, 8, 3, 1, 1, 16, 16, 1),
        ConvSpec("conv_a", 8, 16, 3, 2, 1, 16, 16, 1, bias=True, layout_channels=8),
        ConvSpec("conv_b", 16, 16, 3, 1, 1, 8, 8, 2, layout_channels=16),
        ConvSpec("short", 8, 16, 1, 2, 0, 16, 16, 1, bias=True, layout_channels=8),
        ConvSpec("head", 16, 5, 1, 1, 0, kind="linear", bias=True),
    ]


def test_names_key_the_modules():
    model = Residual()
    modules = dict(model.named_modules())
    for spec in extract_specs(model, (3, 16, 16)):
        assert tuple(modules[spec.name].weight.shape) == spec.weight_shape


def test_extraction_leaves_the_model_as_it_was():
    model = Residual().train()
    extract_specs(model, (3, 16, 16))
    assert model.training
    assert not model.stem[0]._forward_pre_hooks


def test_padding_same_is_accepted():
    spec, = extract_specs(nn.Conv2d(2, 2, 5, padding="same"), (2, 8, 8))
    assert (spec.kernel, spec.padding) == (5, 2)


@pytest.mark.parametrize("layer, message", [
    (nn.Conv2d(4, 4, 3, padding=2, dilation=2), "dilation=(2, 2)"),
    (nn.Conv2d(4, 4, 3, padding=1, groups=2), "groups=2"),
    (nn.Conv2d(4, 4, 3, padding=0), "padding=(0, 0)"),
    (nn.Conv2d(4, 4, 3, padding=1, stride=3), "stride=(3, 3)"),
    (nn.Conv2d(4, 4, (1, 3), padding=(0, 1)), "kernel_size=(1, 3)"),
    (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "reflect"),
    (nn.Conv1d(4, 4, 3, padding=1), "Conv1d"),
])
def test_unsupported_layers_name_the_layer_and_what_is_supported(layer, message):
    model = nn.Sequential(nn.Identity(), layer)
    with pytest.raises(SpecError, match=rf"'1'.*{re.escape(message)}.*supported: Conv2d") as info:
        extract_specs(model, (4, 8, 8))
    assert "\n" not in str(info.value)


def test_stride_two_on_an_odd_input_is_refused():
    with pytest.raises(SpecError, match="odd 7x7"):
        extract_specs(nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 7, 7))


def test_a_module_used_twice_is_refused():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    with pytest.raises(SpecError, match="more than once"):
        extract_specs(nn.Sequential(conv, conv), (2, 4, 4))


def test_linear_on_a_feature_map_is_refused():
    with pytest.raises(SpecError, match="'0' \\(Linear\\) gets a 4-d input"):
        extract_specs(nn.Sequential(nn.Linear(4, 2)), (3, 4, 4))


def test_an_input_that_does_not_fit_the_model_is_a_one_line_error():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    message = r"input shape \(3, 8, 8\) does not fit the model: "
    with pytest.raises(SpecError, match=message) as info:
        extract_specs(model, (3, 8, 8))
    assert "\n" not in str(info.value)
