"""Build the 10-minute 1280x720 benchmark video from the shared clips: each clip letterboxed to 1280x720 and
played at 30 frames/s, one after another, looped until the length is reached. H.264 (libx264, ``veryfast``, CRF 23,
x264's default GOP and B-frames, as most real video has), written by PyAV.

    python evaluation/long_video.py [OUT.mp4] [--minutes 10]

The file is built once into evaluation/work/ (ignored by git) and re-used while it exists.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "testdata" / "videos"
DEFAULT = ROOT / "evaluation" / "work" / "long_1280x720_10min.mp4"
CLIPS = ("qengineering_Norton_A.mp4", "friends_kitchen_clip.mp4", "short_hamilton_clip.mp4",
         "facenet_pytorch_video.mp4", "intel_one-by-one-person-detection.mp4")
WIDTH, HEIGHT, FPS = 1280, 720, 30


def letterbox(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(WIDTH / w, HEIGHT / h)
    nw, nh = round(w * s), round(h * s)
    out = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    x, y = (WIDTH - nw) // 2, (HEIGHT - nh) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return out


def clip_frames(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        try:
            for frame in container.decode(video=0):
                yield letterbox(frame.to_ndarray(format="bgr24"))
        except av.FFmpegError:  # friends_kitchen's last second does not decode
            return


def build(path: Path = DEFAULT, minutes: float = 10) -> Path:
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    total = round(minutes * 60 * FPS)
    frames = itertools.islice(itertools.chain.from_iterable(clip_frames(VIDEOS / c) for c in itertools.cycle(CLIPS)),
                              total)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        stream.codec_context.time_base = Fraction(1, FPS)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    tmp.replace(path)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(DEFAULT))
    ap.add_argument("--minutes", type=float, default=10)
    a = ap.parse_args()
    print(build(Path(a.out), a.minutes))
