"""End-to-end speed, cold, as a user runs it: ``person-cluster run VIDEO`` with the default config in a fresh
process, against a faithful reference of seed 000's serial pipeline on the same file, alternating, in one run.

    python evaluation/benchmark_speed.py [--videos DIR] [--only NAME ...] [--repeat N] [--no-long]

Videos: every shared clip, plus a 10-minute 1280x720 video built from them (evaluation/long_video.py; built once
into evaluation/work/).

Reference (seed 000): a serial per-frame loop over one frame per second, read as seed 000 reads them (OpenCV
``grab()`` on every frame, ``retrieve()`` on sampled ones), each resized to at most 700x500, dlib HOG (upsample 1),
5-point landmarks and ``compute_face_descriptor`` per face, then DBSCAN eps 0.5. Its models are loaded once in
this process before its clock starts (in its favour: ours is timed from process start).

Ours: ``python -m person_cluster run VIDEO -o TMP`` (default config, every output written), wall time from
process start to exit, peak RSS (largest process, from wait4), and its own log of where the time went (extraction:
waiting on detection, CNNs, storing; clustering and outputs; the rest is start-up). "decode floor": the same
file's sampled frames decoded alone by our reader (PyAV, threads, unsampled non-reference frames skipped).

Medians over ``--repeat`` runs; the last line is ``ratio_long=R ratio_norton=R`` (reference seconds / ours).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import dlib
import numpy as np
from scipy.spatial.distance import pdist

from person_cluster.clustering import DBSCANClustering, DenseDistances
from person_cluster.config import Config
from person_cluster.models import dlib_model_path
from person_cluster.records import InputItem
from person_cluster.sampling import plan_frames, read_planned_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
import long_video

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "testdata" / "videos"
_SECONDS = re.compile(r"seconds: extraction ([\d.]+) \(main thread: waiting on detection ([\d.]+), CNNs ([\d.]+), "
                      r"storing ([\d.]+)\), clustering and outputs ([\d.]+)")
_SUMMARY = re.compile(r"(\d+) faces in (\d+) frames")


def seed_scale(width: int, height: int) -> float:
    return min(1.0, 700 / width, 500 / height)


class Seed000:
    """Seed 000's per-frame loop (model files loaded once, untimed)."""

    def __init__(self) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(dlib_model_path("landmarks5"))
        self.net = dlib.face_recognition_model_v1(dlib_model_path("descriptor"))

    def __call__(self, video: Path) -> tuple[float, int, int]:
        started = time.perf_counter()
        item = InputItem(str(video), "video")
        descriptors, frames = [], 0
        for img in opencv_frames(video, plan_frames(item, Config().sampling).indices):
            scale = seed_scale(img.shape[1], img.shape[0])
            if scale < 1:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            for rect in self.detector(rgb, 1):
                descriptors.append(np.array(self.net.compute_face_descriptor(rgb, self.shape(rgb, rect))))
            frames += 1
        if len(descriptors) > 1:
            DBSCANClustering(0.5, 5).fit_predict(DenseDistances(pdist(np.array(descriptors)), len(descriptors)))
        return time.perf_counter() - started, frames, len(descriptors)


def opencv_frames(video: Path, indices: list[int]) -> Iterator[np.ndarray]:
    """Seed 000's reader: grab every frame, retrieve (convert) the sampled ones."""
    cap, wanted, pos = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG), set(indices), 0
    try:
        while wanted and cap.grab():
            if pos in wanted:
                wanted.discard(pos)
                yield cap.retrieve()[1]
            pos += 1
    finally:
        cap.release()


def decode_floor(video: Path) -> float:
    item = InputItem(str(video), "video")
    started = time.perf_counter()
    for _ in read_planned_frames(item, plan_frames(item, Config().sampling)):
        pass
    return time.perf_counter() - started


def run_cli(video: Path) -> dict[str, float]:
    """A cold ``person-cluster run`` with the default config: wall seconds, peak RSS (GB), its logged phases."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "person_cluster", "run", str(video), "-o", tmp]
        env = {**os.environ, "TQDM_DISABLE": "1"}
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
        if os.waitstatus_to_exitcode(status) != 0 or not (Path(tmp) / "manifest.json").is_file():
            raise SystemExit(f"person-cluster failed on {video}: {err}")
    phases = _SECONDS.search(err)
    faces, frames = _SUMMARY.search(out).groups() if _SUMMARY.search(out) else ("0", "0")
    keys = ("extract", "wait", "cnn", "store", "cluster_outputs")
    row = {"wall": wall, "rss_gb": usage.ru_maxrss / 1024**2, "faces": int(faces), "frames": int(frames)}
    row.update({k: float(v) for k, v in zip(keys, phases.groups())} if phases else dict.fromkeys(keys, 0.0))
    row["startup"] = wall - row["extract"] - row["cluster_outputs"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", default=str(VIDEOS))
    ap.add_argument("--only", nargs="*", help="video file names")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported")
    ap.add_argument("--no-long", action="store_true", help="leave out the 10-minute video")
    args = ap.parse_args()
    videos = sorted(Path(args.videos).glob("*.mp4"))
    if not args.no_long:
        videos.append(long_video.build())
    if args.only:
        videos = [v for v in videos if v.name in args.only]
    ref = Seed000()
    c = Config()
    print(f"# {len(os.sched_getaffinity(0))} cores; ours: cold `person-cluster run` with the default config "
          f"(detector {c.detection.model}, workers {c.runtime.resolved_workers()}); medians of {args.repeat}, "
          "alternating with the reference")
    cols = ["video", "frames", "faces", "ours s", "ref s", "ratio ref/ours", "ref faces", "decode floor s",
            "start-up s", "extraction s", "(wait on detection", "CNNs", "storing)", "clustering + outputs s",
            "peak RSS GB"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols), flush=True)
    ratios = {}
    for video in videos:
        ours, refs, floors = [], [], []
        for _ in range(args.repeat):
            refs.append(ref(video))
            ours.append(run_cli(video))
            floors.append(decode_floor(video))
        med = {k: statistics.median(o[k] for o in ours) for k in ours[0]}
        ref_s = statistics.median(r[0] for r in refs)
        ratios[video.name] = ref_s / med["wall"]
        print(f"| {video.name} | {ours[0]['frames']} | {ours[0]['faces']} | {med['wall']:.2f} | {ref_s:.2f} | "
              f"{ref_s / med['wall']:.2f} | {refs[0][2]} | {statistics.median(floors):.2f} | {med['startup']:.2f} | "
              f"{med['extract']:.2f} | {med['wait']:.2f} | {med['cnn']:.2f} | {med['store']:.2f} | "
              f"{med['cluster_outputs']:.2f} | {max(o['rss_gb'] for o in ours):.2f} |", flush=True)
    print(" ".join(f"ratio[{k}]={v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
