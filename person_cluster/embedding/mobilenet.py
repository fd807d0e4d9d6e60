"""torchvision's MobileNetV2 feature stages written out in plain torch, for the default clothing backbone.

Why not torchvision itself: importing it pulls in ``torch._dynamo`` (through ``torchvision.ops``), about 1.2 s on 2
cores, and the torch.fx tracing that cuts a stage costs more; since the CNNs run in onnxruntime, only the one-off
export (``onnx_export.py``, done by ``make setup``) pays for this module at all. This module builds
the same layers under the same parameter names (``features.N...``), so torchvision's own checkpoint loads into it
strictly, with batch norm folded into the convolutions as the traced path does. ``tests/test_clothing.py`` checks
that it gives torchvision's features. Other backbones and stages go through torchvision (``clothing.py``).
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# torchvision's MobileNetV2 (width 1.0): expansion t, output channels c, repeats n, first stride s.
_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STAGE = re.compile(r"features\.(\d+)")


class _ConvBN(nn.Sequential):
    """Conv2d + BatchNorm2d (+ ReLU6), named 0, 1, 2 as torchvision's Conv2dNormActivation."""

    def __init__(self, inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(out)]
        super().__init__(*layers, *([nn.ReLU6(inplace=True)] if relu else []))


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        layers: list[nn.Module] = [_ConvBN(inp, hidden, 1)] if expand != 1 else []
        layers += [_ConvBN(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2_features(last: int) -> nn.Sequential:
    """``features.0`` .. ``features.<last>`` of torchvision's MobileNetV2, under torchvision's parameter names."""
    blocks: list[nn.Module] = [_ConvBN(3, 32, 3, 2)]
    inp = 32
    for t, c, n, s in _SETTING:
        for i in range(n):
            blocks.append(_InvertedResidual(inp, c, s if i == 0 else 1, t))
            inp = c
    blocks.append(_ConvBN(inp, 1280, 1))
    if not 0 <= last < len(blocks):
        raise ValueError(f"MobileNetV2 has stages features.0 to features.{len(blocks) - 1}")
    return nn.Sequential(*blocks[: last + 1])


def load_features(state: dict[str, torch.Tensor], last: int) -> nn.Sequential:
    """The stages up to ``features.<last>`` with a torchvision checkpoint's weights (every one of their parameters
    must be there), batch norm folded into the convolutions, in eval mode."""
    model = nn.Sequential()
    model.features = mobilenet_v2_features(last)
    wanted = model.state_dict().keys()
    model.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=True)
    model.eval()
    _fold(model)
    return model.features


def _fold(module: nn.Module) -> None:
    """Replace every Conv2d followed by BatchNorm2d in a Sequential with the folded Conv2d (and an identity)."""
    for child in module.children():
        _fold(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                module[i + 1] = nn.Identity()
