"""Shared fixtures: paths to the real test data beside the checkout, and small synthetic inputs."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Property tests: the same examples on every run (CI and mutation runs must not depend on luck), no deadline (shared,
# noisy machines). HYPOTHESIS_PROFILE=explore draws new examples, more of them, to look for a failing case.
settings.register_profile("suite", derandomize=True, deadline=None, max_examples=50,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; a copy of the tests elsewhere (mutmut's mutants/) names it in the environment.
TESTDATA = Path(os.environ.get("PERSON_CLUSTER_TESTDATA") or REPO.parent / "shared" / "testdata")
LFW = TESTDATA / "faces" / "lfw150"
VIDEOS = TESTDATA / "videos"


def pytest_collection_modifyitems(items) -> None:
    """mutmut 3.8 records which tests reach a function by ``item._nodeid``, which pytest 9 renamed: give it one."""
    if "MUTANT_UNDER_TEST" in os.environ:
        for item in items:
            item._nodeid = item.nodeid


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


def make_lfw12_run(root: Path) -> Path:
    """A default run (one worker) over 12 LFW photos of 3 people, into ``root``/out; their background faces make
    some unassigned."""
    from person_cluster import api
    from person_cluster.config import Config

    lfw = need(LFW)
    photos = root / "photos"
    for person in ("Colin_Powell", "Gerhard_Schroeder", "Tony_Blair"):
        (photos / person).mkdir(parents=True)
        for f in sorted((lfw / person).glob("*.jpg"))[:4]:
            (photos / person / f.name).write_bytes(f.read_bytes())
    out = root / "out"
    api.run([str(photos)], out, Config().with_overrides({"runtime.workers": 1}), progress=False)
    return out


def frames_committed(out: Path) -> int:
    """Frames in OUT's feature cache so far (read while a run writes it; 0 before it exists)."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{out / 'features.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="session")
def lfw12_run(tmp_path_factory) -> Path:
    """:func:`make_lfw12_run`, once per session. Shared by the tests: read it, or copy it before changing anything.
    A mutation run makes it once for all its sessions (PERSON_CLUSTER_LFW12_RUN) and each session gets a copy."""
    made = os.environ.get("PERSON_CLUSTER_LFW12_RUN")
    if made:
        out = tmp_path_factory.mktemp("run") / "out"
        shutil.copytree(made, out, symlinks=True)
        return out
    return make_lfw12_run(tmp_path_factory.mktemp("lfw12"))


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def write_h264(path: Path, frames: list[np.ndarray], fps: int = 10, times_ms: list[int] | None = None,
               gop: int | None = None) -> Path:
    """H.264 with three B-frames between reference frames, as most real video has; ``times_ms`` gives each frame
    its own timestamp (a variable frame rate); ``gop``: a keyframe every that many frames (x264's default: 250)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        params = "bframes=3:b-adapt=0" + (f":keyint={gop}:min-keyint={gop}:scenecut=0" if gop else "")
        stream.options = {"crf": "18", "x264-params": params}  # B-frames even in still scenes
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = (times_ms[i] if times_ms else i * 1000 // fps), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def numbered_frame(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    """A frame whose index can be read back after lossy compression: 8 bit cells, black or white."""
    img = np.full((h, w, 3), 128, np.uint8)
    for bit in range(8):
        img[10:50, 10 + bit * 17 : 24 + bit * 17] = 255 if (i >> bit) & 1 else 0
    return img


def read_number(img: np.ndarray) -> int:
    return sum(1 << bit for bit in range(8) if img[30, 17 + bit * 17].mean() > 128)


def get(app, target: str, **headers: str):
    """The review app's answer to a GET, with an input file's bytes read as the server would stream them."""
    r = app.handle("GET", target, headers)
    if r.file is not None:
        with r.file:
            r.file.seek(r.start)
            r.body = r.file.read(r.length)
        r.file = None
    return r
