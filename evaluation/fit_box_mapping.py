"""Fit the map from CenterFace's boxes to dlib's box convention (person_cluster/detection/centerface.py).

    python evaluation/fit_box_mapping.py [--lfw N] [--video PATH ...]

Runs dlib HOG (upsample 1, full resolution) and CenterFace (raw boxes, before the map) on LFW photos and on every
second of the given videos, pairs their boxes (IoU >= 0.3, one-to-one) and prints the medians of dlib width /
CenterFace width, dlib height / CenterFace height and (dlib centre - CenterFace centre) / CenterFace height.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from person_cluster.config import DetectionConfig, SamplingConfig
from person_cluster.detection import centerface
from person_cluster.detection.dlib_hog import HogDetector
from person_cluster.records import InputItem
from person_cluster.sampling import plan_frames, read_planned_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "testdata"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def images(lfw_n: int, videos: list[str]):
    paths = sorted((SHARED / "faces" / "lfw150").glob("*/*.jpg"))
    for p in random.Random(0).sample(paths, lfw_n):
        yield cv2.imread(str(p))
    for v in videos:
        item = InputItem(v, "video")
        plan = plan_frames(item, SamplingConfig())
        for frame in read_planned_frames(item, plan):
            yield frame.image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=int, default=400)
    ap.add_argument("--video", nargs="*", default=[str(SHARED / "videos" / "qengineering_Norton_A.mp4"),
                                                    str(SHARED / "videos" / "friends_kitchen_clip.mp4")])
    args = ap.parse_args()
    # Raw CenterFace boxes: the identity map.
    centerface.DLIB_WIDTH = centerface.DLIB_HEIGHT = 1.0
    centerface.DLIB_CENTRE_DOWN = 0.0
    cf = centerface.CenterFaceDetector(DetectionConfig(model="centerface", max_side=4096, min_face_size=1))
    hog = HogDetector(DetectionConfig(model="hog", max_side=4096, min_face_size=1))
    rows = []
    for bgr in images(args.lfw, args.video):
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        a = [np.array(d.box.as_list(), float) for d in hog(rgb)]
        b = [np.array(d.box.as_list(), float) for d in cf(rgb)]
        pairs = sorted(((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)), reverse=True)
        used_a, used_b = set(), set()
        for v, i, j in pairs:
            if v < 0.3 or i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            x, y = a[i], b[j]
            wh = y[2] - y[0], y[3] - y[1]
            rows.append(((x[2] - x[0]) / wh[0], (x[3] - x[1]) / wh[1],
                         ((x[0] + x[2]) - (y[0] + y[2])) / 2 / wh[0], ((x[1] + x[3]) - (y[1] + y[3])) / 2 / wh[1]))
    r = np.array(rows)
    print(f"{len(r)} face pairs")
    for k, name in enumerate(("width ratio", "height ratio", "centre dx / width", "centre dy / height")):
        q = np.percentile(r[:, k], [25, 50, 75])
        print(f"{name:20s} median {q[1]:.4f}  (quartiles {q[0]:.4f} .. {q[2]:.4f})")


if __name__ == "__main__":
    main()
