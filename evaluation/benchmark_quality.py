"""Clustering quality on every shared truth: seed baselines, this project's default, and one row per mechanism.

    python evaluation/benchmark_quality.py [--work DIR] [--only NAME ...] [--markdown FILE]

Extracts each dataset once into DIR/<name> (default evaluation/work/quality; a second run re-uses the feature
cache), then clusters the cached features with every method below and scores them with `person-cluster
evaluate`'s code. Extraction uses the default config with ``face.flip: all`` (every face's mirror image
described), so that every mirror setting can be measured on the same features; each row clusters the faces as a
run with its ``face.flip`` stores them (the default, ``photos``: the photos' faces with their mirror images, the
video frames' without, whose quality gate then judges size, sharpness and the detector's score). ``--around`` adds
a second table: a few rows at each threshold from 0.33 to 0.39 and their mean, a figure less at the mercy of one
join than the figure at 0.36 (the living room moves by up to 0.07 from one threshold to the next); ``--orders N``
makes each of a photo folder's figures there the mean over N orders of its photos (Chinese whispers' result depends
on the order of what it clusters: friends_kitchen's crops at 0.36 range from BCubed F 0.84 to 0.97 over 5 orders).
Datasets:

* lfw, last: LFW (../shared/testdata/faces/lfw150, all 13,232 photos; ~15 min of extraction on 2 cores): identity =
  folder, the face nearest the photo centre carries it (``--truth folders``).
* norton: qengineering_Norton_A.mp4 every 0.25 s (every 6th frame, the frames its truth labels).
* kitchen: friends_kitchen_clip.mp4 every 0.2002002 s (every 6th frame at 29.97 frames/s).
* living_room: friends_living_room_clip.mp4 every 0.5005005 s (every 12th frame at 23.976 frames/s), with the
  truth in evaluation/truth/ (small, blurred faces: dlib's descriptors separate its same/other-person pairs with
  ROC AUC 0.74, against 0.99 on friends_kitchen; evaluation/benchmark_alignment.py).
* living_room_dense: the same clip every 0.2002002 s (as friends_kitchen is sampled, and as benchmark_names.py adds
  it), scored on the truth's frames it samples (every 24th): longer tracks, more of them switch at crossings.
* crops: every labelled face of the three video truths cut out with half a box of margin, one photo each, in one
  folder per identity (a photo folder with no tracks: turned, lowered and blurred faces among good ones).
* kitchen_crops: friends_kitchen's alone (4 people, large faces of a TV series, each seen frontal and turned: the
  held-back folder of TV-series crops is of this kind).

Methods: the seeds' baselines (DBSCAN eps 0.5 on raw descriptors; seed 004's relative HAC cut with merges; dlib's
Chinese whispers at 0.5), this project's default, the default as it was at 82f5774 (clothing within 10 s, no
track checks, no scene merge), and the default with one mechanism switched (scenes, track checks, the scene
merge, its metric learnt per video, the rival split of tracks, the rival merge, the quality gate, the mirror images, HAC or FINCH instead of Chinese whispers); and on the three videos, the default on other clothing
features (``FEATURES``: the later stage alone, as at 6d28113, and the early stage without the colour
histograms), each extracted once more; and the default on features whose chips were aligned by one set of points
(``face.align``: dlib's landmarks alone, as before, or the detector's alone) instead of both.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.distance import pdist

from person_cluster import api
from person_cluster.cache import CACHE_NAME, CacheError, FeatureCache
from person_cluster.clustering import ChineseWhispersClustering, DBSCANClustering, DenseDistances, HACClustering
from person_cluster.config import Config, FaceConfig
from person_cluster.evaluation import TruthMatch, load_truth, score
from person_cluster.postprocess import postprocess
from person_cluster.records import FaceTable, mirror_images
from person_cluster.sampling.video import probe_video, read_video_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "testdata"
VIDEOS, TRUTHS = SHARED / "videos", SHARED / "truth"
# name -> (input, truth, capture interval); the crops' input is made from the three video truths.
DATASETS = {
    "norton": (VIDEOS / "qengineering_Norton_A.mp4", TRUTHS / "qengineering_Norton_A.truth.csv", 0.25),
    "kitchen": (VIDEOS / "friends_kitchen_clip.mp4", TRUTHS / "friends_kitchen_clip.truth.csv", 0.2002002),
    "living_room": (VIDEOS / "friends_living_room_clip.mp4",
                    ROOT / "evaluation" / "truth" / "friends_living_room_clip.truth.csv", 0.5005005),
    "living_room_dense": (VIDEOS / "friends_living_room_clip.mp4",
                          ROOT / "evaluation" / "truth" / "friends_living_room_clip.truth.csv", 0.2002002),
    "crops": (None, "folders", None),
    "kitchen_crops": (None, "folders", None),
    "lfw": (SHARED / "faces" / "lfw150", "folders", None),
}
COLUMNS = ("nmi", "ari", "pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision",
           "bcubed_recall", "bcubed_f", "purity", "n_clusters", "n_identities", "n_faces_scored", "coverage",
           "detection_recall", "same_frame_pairs")


def make_crops(dest: Path, clips: tuple[str, ...] = ("norton", "kitchen", "living_room")) -> Path:
    """Every labelled face of the video truths of ``clips`` as a photo (half a box of margin), one folder per
    identity."""
    if dest.is_dir():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name in clips:
        video, truth, _ = DATASETS[name]
        with open(truth, encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["identity"] not in ("unknown", "not_a_face")]
        by_frame: dict[int, list[dict[str, str]]] = {}
        for r in rows:
            by_frame.setdefault(int(r["frame"]), []).append(r)
        for frame in read_video_frames(str(video), probe_video(str(video)), sorted(by_frame)):
            h, w = frame.image.shape[:2]
            for k, r in enumerate(by_frame[frame.index]):
                left, top, right, bottom = (int(r[c]) for c in ("left", "top", "right", "bottom"))
                dx, dy = (right - left) // 2, (bottom - top) // 2
                crop = frame.image[max(0, top - dy):min(h, bottom + dy), max(0, left - dx):min(w, right + dx)]
                folder = tmp / r["identity"]  # one person across the two Friends clips is one identity
                folder.mkdir(parents=True, exist_ok=True)
                # the clip in the name: two clips share frame numbers, and a name held by both would keep one
                cv2.imwrite(str(folder / f"{name}_{frame.index:05d}_{k}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
    tmp.rename(dest)
    return dest


def extract_once(inputs: list[str], out: Path, config: Config) -> None:
    """Extract into OUT unless it already holds a run with these extraction settings."""
    if (out / "manifest.json").exists():
        with FeatureCache.open_existing(out / CACHE_NAME) as cache:
            try:  # settings added since the cache was filled count with the value it was filled with (EARLIER)
                cache.check_settings({**config.extraction_dict(), "inputs": inputs})
                return
            except CacheError:
                print(f"# {out} was extracted with other settings: extracting again", file=sys.stderr)
    started = time.perf_counter()
    api.run(inputs, out, config, overwrite=True, progress=False)
    print(f"# extracted {inputs[0]} into {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def seed000(table, config) -> np.ndarray:
    return DBSCANClustering(eps=0.5, min_samples=5).fit_predict(DenseDistances(pdist(table.face), len(table)))


def seed004(table, config) -> np.ndarray:
    d = DenseDistances(pdist(table.face / np.linalg.norm(table.face, axis=1, keepdims=True)), len(table))
    labels = HACClustering(distance_threshold=(1 - 0.63) * float(d.condensed.max())).fit_predict(d)
    post = Config().with_overrides({"postprocess.merge_face_threshold": 0.18,
                                    "postprocess.merge_cloth_threshold": 0.12, "postprocess.min_csize": 6})
    return postprocess(labels, table.face, table.cloth, table.has_cloth, post.postprocess)


def dlib_cw(table, config) -> np.ndarray:
    return ChineseWhispersClustering(0.5).fit_predict(DenseDistances(pdist(table.face), len(table)))


def as_extracted(table: FaceTable, face: FaceConfig) -> FaceTable:
    """``table``, extracted with every face's mirror image, as a run with ``face.flip`` stores and reads it (as
    cache.load_table reads it: records.mirror_images)."""
    if table.face_flip is None:
        return table
    mirrored = np.array([face.mirrors(photo=frame is None) for frame in table.frames], bool)
    return dataclasses.replace(table, face_flip=mirror_images(table.face, table.face_flip, mirrored))


def ours(overrides: dict):
    """The default with ``overrides``, on the faces as a run with that config has them (its ``face.flip``)."""
    def method(table, config) -> np.ndarray:
        config = config.with_overrides({"face.flip": FaceConfig().flip, **overrides})
        return api.cluster_table(as_extracted(table, config.face), config)
    return method


BEFORE = {"face.flip": "none", "quality.enabled": False, "fusion.cloth_scope": "window", "tracking.ambiguity_margin": 0,
          "tracking.split_distance": None, "tracking.rival_split": False,
          "postprocess.scene_merge": False, "postprocess.merge_face_threshold": 0.15}
METHODS = {
    "seed 000/002: DBSCAN eps 0.5, min_samples 5": seed000,
    "seed 004: HAC sim 0.63, min_csize 6, merge 0.18/0.12": seed004,
    "dlib Chinese whispers 0.5 (raw descriptors)": dlib_cw,
    "default at 82f5774 (clothing within 10 s, no track checks)": ours(BEFORE),
    "**default** (scenes, track checks, quality gate, scene merge, photos' mirror average; Chinese whispers 0.36, face + clothing 0.5)":
        ours({}),
    "default without the scene merge": ours({"postprocess.scene_merge": False}),
    "default, the scene merge in dlib's space (no metric learnt per video)": ours({"postprocess.scene_metric_dims": None}),
    "default, clothing within 10 s instead of scenes": ours({"fusion.cloth_scope": "window"}),
    "default, clothing always compared": ours({"fusion.cloth_scope": "always"}),
    "default without track checks": ours({"tracking.ambiguity_margin": 0, "tracking.split_distance": None,
                                          "tracking.rival_split": False}),
    "default without the rival split (tracks cut at a gap where a part is nearer someone seen beside the other)":
        ours({"tracking.rival_split": False}),
    "default without the rival merge (clusters of a scene joined by face where nearer each other than anyone beside them)":
        ours({"postprocess.rival_merge": False}),
    "default without the rival pieces (in the rival merge, a piece judged by its own rivals and nearest cluster)":
        ours({"postprocess.rival_pieces": False}),
    "default + the face-only centroid merge (clusters whose mean faces are within 0.15 joined, anywhere; on until 2026-12-03)":
        ours({"postprocess.merge_face_threshold": 0.15}),
    "default without the quality gate (poor faces form clusters like good ones; the default until 2026-12-03)":
        ours({"quality.enabled": False}),
    "default without mirror images (face.flip: none, no mirror average or mirror distance; the default until 2026-12-03)":
        ours({"face.flip": "none"}),
    "default, the photos' mirror images only as the gate's cue (fusion.mirror_average: false)":
        ours({"fusion.mirror_average": False}),
    "default, the video faces mirrored too (face.flip: all)": ours({"face.flip": "all"}),
    "default, the video faces mirrored too, without the quality gate":
        ours({"face.flip": "all", "quality.enabled": False}),
    "default with HAC average 0.36 instead of Chinese whispers": ours({"clustering.algorithm": "hac"}),
    "default with FINCH instead of Chinese whispers": ours({"clustering.algorithm": "finch"}),
}


# Other features: the default clustering on features extracted again with these settings, into DIR/<name>-<key>.
# The clothing ones on the videos only (the crops and LFW have almost no clothing region: 8 of 1,007 and 823 of
# 15,986 faces); each is one more extraction of the three clips, ~5 minutes on 2 cores. The chip aligned by one set
# of points instead of both: dlib's landmarks alone (as before 2026-12) everywhere, the detector's alone on all but
# LFW (~15 minutes more; measured once outside: BCubed F 0.928, pairwise F 0.954).
VIDEOS_ONLY = ("norton", "kitchen", "living_room")
FEATURES = {
    "cnn13": ("default with the clothing feature of 6d28113 (MobileNetV2 features.13 alone)",
              {"cloth.stage": "features.13", "cloth.colour": False}, VIDEOS_ONLY),
    "nocolour": ("default without the colour histograms (features.3 alone)", {"cloth.colour": False}, VIDEOS_ONLY),
    "dlibalign": ("default with the chip aligned by dlib's landmarks alone (face.align: dlib)",
                  {"face.align": "dlib"}, tuple(DATASETS)),
    "detalign": ("default with the chip aligned by the detector's points alone (face.align: detector)",
                 {"face.align": "detector"}, (*VIDEOS_ONLY, "crops")),
}


# The rows of the --around table, each at every threshold of AROUND_THRESHOLDS (Chinese whispers' edge, which the
# scene merge and the rival merge share).
AROUND_THRESHOLDS = (0.33, 0.34, 0.35, 0.36, 0.37, 0.38, 0.39)
AROUND = {
    "**default**": {},
    "without the quality gate": {"quality.enabled": False},
    "without mirror images (face.flip: none)": {"face.flip": "none"},
    "the video faces mirrored too (face.flip: all)": {"face.flip": "all"},
}


def reordered(table: FaceTable, match: TruthMatch, seed: int) -> tuple[FaceTable, TruthMatch]:
    """The faces as a run would hold them with its inputs listed in another order (``seed``; 0: as extracted): a
    photo folder's photos shuffled, a video's faces kept in their order. Chinese whispers' result depends on the
    order of what it clusters, so a figure measured in one order may be that order's luck."""
    if seed == 0:
        return table, match
    sources = list(dict.fromkeys(table.sources))
    rank = dict(zip(sources, np.random.default_rng(seed).permutation(len(sources)), strict=True))
    rows = np.array(sorted(range(len(table)), key=lambda k: (rank[table.sources[k]], k)), np.int64)
    position = np.empty_like(rows)
    position[rows] = np.arange(len(rows))
    return table.take(rows), dataclasses.replace(match, faces=position[match.faces])


def around(name: str, table: FaceTable, match: TruthMatch, config: Config, orders: int = 1) -> list[list[str]]:
    """Each AROUND row at every threshold: NMI / BCubed F at each, then their means. With ``orders`` > 1 and more
    than one input, each figure is the mean over that many orders of the inputs (:func:`reordered`)."""
    runs = [reordered(table, match, seed) for seed in range(orders if len(set(table.sources)) > 1 else 1)]
    rows = []
    for label, overrides in AROUND.items():
        nmi, bcubed = np.zeros((len(runs), len(AROUND_THRESHOLDS))), np.zeros((len(runs), len(AROUND_THRESHOLDS)))
        for r, (faces, scored) in enumerate(runs):
            for k, threshold in enumerate(AROUND_THRESHOLDS):
                labels = ours({**overrides, "clustering.distance_threshold": threshold})(faces, config)
                s = score(scored, labels, faces.sources, faces.frames)
                nmi[r, k], bcubed[r, k] = s["nmi"], s["bcubed_f"]
        rows.append([name, label, *(f"{a:.3f} / {b:.3f}" for a, b in zip(nmi.mean(0), bcubed.mean(0), strict=True)),
                     f"**{nmi.mean():.3f} / {bcubed.mean():.3f}**", str(len(runs))])
        print(" | ".join(rows[-1]), file=sys.stderr)
    return rows


def cached(out: Path, truth: str) -> tuple[FaceTable, TruthMatch, Config]:
    """OUT's cached faces, those of them that ``truth`` labels, and the config OUT was run with."""
    with FeatureCache.open_existing(out / CACHE_NAME) as cache:
        table, sampled, stored = cache.load_table(), cache.frames(), cache.get_meta("config")
    return table, load_truth(truth).match(table.sources, table.frames, table.bboxes, sampled), Config.from_stored(stored)


def evaluate(name: str, table: FaceTable, match: TruthMatch, config: Config,
             methods: dict | None = None) -> list[list[str]]:
    rows = []
    for method_name, method in (methods or METHODS).items():
        started = time.perf_counter()
        labels = method(table, config)
        seconds = time.perf_counter() - started
        s = score(match, labels, table.sources, table.frames)
        rows.append([name, method_name] + [f"{s[k]:.3f}" if isinstance(s[k], float) else str(s[k]) for k in COLUMNS]
                    + [f"{seconds:.1f}"])
        print(" | ".join(rows[-1]), file=sys.stderr)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "evaluation" / "work" / "quality"))
    ap.add_argument("--only", nargs="*", choices=list(DATASETS), help="datasets to run (default: all)")
    ap.add_argument("--markdown", help="also write the table, with date and commit, to this file")
    ap.add_argument("--orders", type=int, default=1, metavar="N",
                    help="with --around: each figure the mean over N orders of a photo folder's photos (default 1)")
    ap.add_argument("--around", action="store_true",
                    help="also the AROUND rows at each threshold 0.33-0.39 and their mean (LFW: ~15 min more)")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base = Config().with_overrides({"face.flip": "all"})
    rows, around_rows = [], []
    for name in args.only or list(DATASETS):
        source, truth, interval = DATASETS[name]
        if name == "crops":
            source = make_crops(work / "crop_photos")
        elif name == "kitchen_crops":
            source = make_crops(work / "kitchen_crop_photos", ("kitchen",))
        config = base if interval is None else base.with_overrides({"sampling.capture_interval_sec": interval})
        extract_once([str(source)], work / name, config)
        table, match, _ = cached(work / name, str(truth))
        rows += evaluate(name, table, match, config)
        if args.around:
            around_rows += around(name, table, match, config, args.orders)
        for key, (label, overrides, datasets) in FEATURES.items():
            if name not in datasets:
                continue
            other = config.with_overrides(overrides)
            extract_once([str(source)], work / f"{name}-{key}", other)
            rows += evaluate(name, *cached(work / f"{name}-{key}", str(truth))[:2], other, {label: ours({})})
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False, capture_output=True,
                            text=True).stdout.strip()
    head = ["dataset", "method", *COLUMNS, "seconds"]
    lines = [(f"Measured {date.today().isoformat()} at commit {commit} on {platform.machine()}, "
              f"`python evaluation/benchmark_quality.py` (clustering seconds exclude extraction)."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if around_rows:
        head = ["dataset", "method", *(f"{t:.2f}" for t in AROUND_THRESHOLDS), "mean", "input orders"]
        title = (f"NMI / BCubed F at each threshold (`--around --orders {args.orders}`; a photo folder's figures are "
                 "means over that many orders of its photos):")
        lines += ["", title, "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in around_rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
