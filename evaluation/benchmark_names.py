"""Names carry over: name the people of one clip as a user would, add a clip of another episode, count the names.

    python evaluation/benchmark_names.py [--work DIR] [--set KEY=VALUE ...] [--around]

1. `person-cluster run` friends_kitchen_clip.mp4 on its truth's frames (every 6th frame);
2. name each person the way a user does from the page: a cluster whose faces are mostly one person of the truth
   is named after that person with `person-cluster name OUT person_NNN NAME`, one cluster per person (the first
   the manifest lists; the kitchen's four people are four clusters);
3. `person-cluster add OUT friends_living_room_clip.mp4` (another episode: other clothes, two people never named,
   Phoebe and Chandler); it is sampled as OUT was, and scored on the frames its truth labels;
4. of the added clip's faces that match its truth: how many of the named people's faces carry their name (target
   >= 90%), and how many faces carry a wrong name (target <= 2%), with the time of the add.

Then the other way round: the living room run on its truth's frames (every 12th), its six people named, and
friends_kitchen added (sampled as the living room was, so scored on every fifth of its truth's frames): once with
one cluster of each person named, once with every cluster that is mostly one person named after them
(people in pieces named alike, as a user who names what they recognise does).

``--around``: instead, the first way (friends_kitchen named, the living room added) at each clustering threshold
from 0.33 to 0.39, with the quality gate on and off: how much of a figure is the threshold's noise.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "testdata"
KITCHEN, LIVING = SHARED / "videos" / "friends_kitchen_clip.mp4", SHARED / "videos" / "friends_living_room_clip.mp4"
KITCHEN_TRUTH = SHARED / "truth" / "friends_kitchen_clip.truth.csv"
LIVING_TRUTH = ROOT / "evaluation" / "truth" / "friends_living_room_clip.truth.csv"
CLI = [sys.executable, "-m", "person_cluster.cli"]


def cli(*args: str) -> str:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)
    if r.returncode:
        raise SystemExit(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def truth_of(out: Path, truth: Path) -> dict[int, str]:
    """Manifest face id -> its identity in ``truth`` (faces that match it)."""
    from person_cluster.evaluation import load_truth
    from person_cluster.records import FrameInfo

    m = json.loads((out / "manifest.json").read_text())
    frames = [FrameInfo(f["source"], f["frame"], f["time_s"], f["width"], f["height"]) for f in m["frames"]]
    faces = m["faces"]
    match = load_truth(str(truth)).match([f["source"] for f in faces], [f["frame"] for f in faces],
                                         np.array([f["bbox"] for f in faces]).reshape(-1, 4), frames)
    return {int(faces[i]["id"]): who for i, who in zip(match.faces.tolist(), match.identities)}


def carry(out: Path, first: tuple[Path, Path, float], second: tuple[Path, Path], every: bool = False,
          settings: tuple[str, ...] = ()) -> tuple[float, float]:
    """Run ``first`` (video, truth, capture interval) into OUT, name its people as a user would (one cluster of
    each person; ``every``: each cluster whose faces are mostly one person), add ``second`` (video, truth) and
    print how the names carried over. ``settings``: more ``--set KEY=VALUE`` for the run (the add keeps them)."""
    video, truth, interval = first
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cli("run", str(video), "-o", str(out), "-q", "--set", f"sampling.capture_interval_sec={interval}",
        *(arg for kv in settings for arg in ("--set", kv)))
    who = truth_of(out, truth)
    manifest = json.loads((out / "manifest.json").read_text())
    named = {}
    for c in manifest["clusters"]:
        ids = [who[f["id"]] for f in manifest["faces"] if f["cluster"] == c["id"] and f["id"] in who]
        if ids:
            top, n = collections.Counter(ids).most_common(1)[0]
            if n > len(ids) / 2 and (every or top not in named.values()):
                named[c["id"]] = top
    for cluster, name in named.items():
        cli("name", str(out), f"person_{cluster:03d}", name)
    video, truth = second
    started = time.perf_counter()
    summary = cli("add", str(out), str(video), "-q")
    seconds = time.perf_counter() - started
    manifest = json.loads((out / "manifest.json").read_text())
    names = {c["id"]: c["name"] for c in manifest["clusters"]}
    who = truth_of(out, truth)
    added = [f for f in manifest["faces"] if f["source"] == str(video) and f["id"] in who]
    of_named = [f for f in added if who[f["id"]] in named.values()]
    right = sum(names.get(f["cluster"]) == who[f["id"]] for f in of_named)
    wrong = sum(names.get(f["cluster"]) not in (None, who[f["id"]]) for f in added)
    count = collections.Counter(named.values())
    print(f"## {first[0].name}, named: {', '.join(f'{n} x{k}' if k > 1 else n for n, k in sorted(count.items()))}; "
          f"then add {video.name}")
    print(summary.strip())
    print(f"{video.name} faces scored: {len(added)}; of named people: {len(of_named)}, carrying their name: {right} "
          f"({right / max(1, len(of_named)):.1%}, target >= 90%); faces carrying a wrong name: {wrong} "
          f"({wrong / max(1, len(added)):.1%}, target <= 2%); add took {seconds:.1f} s")
    per = collections.Counter((who[f["id"]], names.get(f["cluster"]) or "-") for f in added)
    for (person, name), n in sorted(per.items()):
        print(f"  {person:10s} -> {name:10s} {n}")
    return right / max(1, len(of_named)), wrong / max(1, len(added))


def around(work: Path, settings: tuple[str, ...]) -> None:
    """The first way at each threshold 0.33-0.39, the gate on and off: a table of right / wrong names."""
    rows = []
    for gate in ("true", "false"):
        cells = []
        for threshold in (0.33, 0.34, 0.35, 0.36, 0.37, 0.38, 0.39):
            right, wrong = carry(work, (KITCHEN, KITCHEN_TRUTH, 0.2002002), (LIVING, LIVING_TRUTH), settings=(
                *settings, f"clustering.distance_threshold={threshold}", f"quality.enabled={gate}"))
            cells.append(f"{right:.1%} / {wrong:.1%}")
        rows.append(f"| quality gate {'on' if gate == 'true' else 'off'} | " + " | ".join(cells) + " |")
    print("| names right / wrong | 0.33 | 0.34 | 0.35 | 0.36 | 0.37 | 0.38 | 0.39 |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "evaluation" / "work" / "names"))
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for the runs (and so the adds), as person-cluster run --set; repeatable")
    ap.add_argument("--around", action="store_true", help="the first way at each threshold 0.33-0.39, gate on and off")
    args = ap.parse_args()
    work, settings = Path(args.work), tuple(args.settings)
    if args.around:
        around(work, settings)
        return
    carry(work, (KITCHEN, KITCHEN_TRUTH, 0.2002002), (LIVING, LIVING_TRUTH), settings=settings)
    # The other way: the six people of the living room named, then friends_kitchen (bigger faces) added; the
    # living room's people are in pieces (14 clusters), so once with one piece of each named, once with every
    # piece a user would recognise named alike.
    back = work.with_name(work.name + "-back")
    carry(back, (LIVING, LIVING_TRUTH, 0.5005005), (KITCHEN, KITCHEN_TRUTH), settings=settings)
    carry(back, (LIVING, LIVING_TRUTH, 0.5005005), (KITCHEN, KITCHEN_TRUTH), every=True, settings=settings)


if __name__ == "__main__":
    main()
