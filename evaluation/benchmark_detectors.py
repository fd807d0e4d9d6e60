"""Detector bake-off on the shared video truths: recall as ``evaluate`` counts it, and time per frame.

    python evaluation/benchmark_detectors.py [--variants NAME ...] [--markdown FILE]

For each truth video, the frames that carry truth rows are decoded once; every detector variant runs on all of
them in this process, one thread (as one worker runs it). Recall: truth faces (``not_a_face`` excluded) matched by
a detection at IoU >= 0.5, one-to-one, after the ``min_face_size`` filter, exactly as ``person-cluster evaluate``
reports detection_recall. "extra": detections that match no truth row (mostly unlabelled real faces: the truths
list what two other detectors found). Times: median milliseconds per frame, resize and decoding of the outputs
included, models loaded before the clock starts.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from person_cluster.config import DetectionConfig
from person_cluster.detection import make_detector
from person_cluster.evaluation.truth import NOT_SCORED, greedy_match, iou
from person_cluster.sampling.video import probe_video, read_video_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "testdata"
TRUTHS = {
    "qengineering_Norton_A.mp4": SHARED / "truth" / "qengineering_Norton_A.truth.csv",
    "friends_kitchen_clip.mp4": SHARED / "truth" / "friends_kitchen_clip.truth.csv",
}
DEFAULT_VARIANTS = ["hog-700-min40", "hog-1280-min40", "centerface-320-min20", "centerface-480-min20",
                    "centerface-640-min20", "centerface-640-min40", "centerface-640-min20-t0.3",
                    "centerface-640-min20-t0.7", "centerface-default"]


def variant(name: str) -> DetectionConfig:
    """``MODEL-SIDE[-minN][-tT]``, or ``MODEL-default`` (the model with the config's defaults)."""
    model, *parts = name.split("-")
    config = replace(DetectionConfig(), model=model)
    for part in parts:
        if part.startswith("min"):
            config = replace(config, min_face_size=int(part[3:]))
        elif part.startswith("t"):
            config = replace(config, score_threshold=float(part[1:]))
        elif part != "default":
            config = replace(config, max_side=int(part))
    config.validate()
    return config


def truth_frames(video: str, truth: Path) -> tuple[list[np.ndarray], list[list[tuple[list[int], str]]]]:
    rows: dict[int, list[tuple[list[int], str]]] = {}
    with open(truth, newline="") as f:
        for r in csv.DictReader(f):
            if r["identity"] != "not_a_face":
                rows.setdefault(int(r["frame"]), []).append(
                    ([int(r[k]) for k in ("left", "top", "right", "bottom")], r["identity"]))
    # Frames with not_a_face rows only still count as frames (no truth face on them).
    with open(truth, newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(int(r["frame"]), [])
    indices = sorted(rows)
    frames = list(read_video_frames(video, probe_video(video), indices))
    return [np.ascontiguousarray(fr.image[..., ::-1]) for fr in frames], [rows[fr.index] for fr in frames]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="*", default=DEFAULT_VARIANTS, help=variant.__doc__)
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    lines = ["| video | detector | frames | truth faces | recall | recall, named people | extra | ms/frame |",
             "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name, truth in TRUTHS.items():
        video = str(SHARED / "videos" / name)
        if not truth.is_file():
            continue
        images, truths = truth_frames(video, truth)
        for variant_name in args.variants:
            detect = make_detector(variant(variant_name))
            times, found, named_found, n, n_named, extra = [], 0, 0, 0, 0, 0
            for rgb, rows in zip(images, truths):
                t = time.perf_counter()
                dets = detect(rgb)
                times.append(time.perf_counter() - t)
                boxes = np.array([d.box.as_list() for d in dets]).reshape(-1, 4)
                pairs = greedy_match(iou(boxes, np.array([b for b, _ in rows]).reshape(-1, 4)))
                matched = {t_ for _, t_ in pairs}
                n += len(rows)
                found += len(pairs)
                named = [k for k, (_, ident) in enumerate(rows) if ident not in NOT_SCORED]
                n_named += len(named)
                named_found += sum(k in matched for k in named)
                extra += len(dets) - len(pairs)
            line = (f"| {name} | {variant_name} | {len(images)} | {n} | {found / n:.3f} | {named_found / n_named:.3f} | "
                    f"{extra} | {1000 * statistics.median(times):.1f} |")
            lines.append(line)
            print(line, flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
