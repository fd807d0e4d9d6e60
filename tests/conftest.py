"""Shared fixtures: paths to the real test data beside the checkout, and small synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO.parent / "shared" / "testdata"
LFW = TESTDATA / "faces" / "lfw150"
VIDEOS = TESTDATA / "videos"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data not found at {path}")
    return path


@pytest.fixture
def lfw() -> Path:
    return need(LFW)


@pytest.fixture
def videos() -> Path:
    return need(VIDEOS)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def numbered_frame(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    """A frame whose index can be read back after lossy compression: 8 bit cells, black or white."""
    img = np.full((h, w, 3), 128, np.uint8)
    for bit in range(8):
        img[10:50, 10 + bit * 17 : 24 + bit * 17] = 255 if (i >> bit) & 1 else 0
    return img


def read_number(img: np.ndarray) -> int:
    return sum(1 << bit for bit in range(8) if img[30, 17 + bit * 17].mean() > 128)
