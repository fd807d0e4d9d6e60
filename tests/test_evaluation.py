"""Evaluation metrics against hand-computed cases, truth matching, and the evaluate/sweep commands on a real run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from person_cluster.evaluation import METRIC_KEYS, clustering_scores, load_truth
from person_cluster.evaluation.truth import CsvTruth, FolderTruth, TruthError, greedy_match, iou
from person_cluster.records import FrameInfo


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "person_cluster", *args], check=False, capture_output=True, text=True,
                          timeout=600)


def test_scores_match_a_hand_computed_case():
    # identities a a a b b; clusters {0,1} {2,3} and face 4 unassigned (a singleton).
    s = clustering_scores(["a", "a", "a", "b", "b"], np.array([0, 0, 1, 1, -1]))
    # pairs: true (0,1) (0,2) (1,2) (3,4); predicted (0,1) (2,3); one true positive.
    assert s["pairwise_precision"] == pytest.approx(1 / 2)
    assert s["pairwise_recall"] == pytest.approx(1 / 4)
    assert s["pairwise_f"] == pytest.approx(1 / 3)
    # BCubed per face: precision 1, 1, 1/2, 1/2, 1; recall 2/3, 2/3, 1/3, 1/2, 1/2.
    assert s["bcubed_precision"] == pytest.approx(4 / 5)
    assert s["bcubed_recall"] == pytest.approx(8 / 15)
    assert s["bcubed_f"] == pytest.approx(2 * 0.8 * (8 / 15) / (0.8 + 8 / 15))
    assert s["purity"] == pytest.approx(4 / 5)
    assert s["coverage"] == pytest.approx(4 / 5)
    assert (s["n_clusters"], s["n_identities"], s["n_faces_scored"]) == (2, 2, 5)


def test_perfect_and_degenerate_clusterings():
    perfect = clustering_scores(["x", "x", "y"], np.array([5, 5, 2]))
    assert all(perfect[k] == pytest.approx(1.0) for k in ("nmi", "ari", "pairwise_f", "bcubed_f", "purity"))
    lumped = clustering_scores(["x", "x", "y", "y"], np.zeros(4, int))
    assert lumped["pairwise_precision"] == pytest.approx(1 / 3) and lumped["pairwise_recall"] == 1.0
    assert lumped["bcubed_precision"] == pytest.approx(0.5) and lumped["purity"] == pytest.approx(0.5)
    # All unassigned: every face is its own cluster, nothing is merged wrongly, nothing is found together.
    alone = clustering_scores(["x", "x", "y"], np.full(3, -1))
    assert alone["pairwise_precision"] == 1.0 and alone["pairwise_recall"] == 0.0 and alone["coverage"] == 0.0


def test_iou_and_one_to_one_matching():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]])
    b = np.array([[0, 0, 10, 20], [0, 0, 10, 10]])
    o = iou(a, b)
    assert o[0, 0] == pytest.approx(0.5) and o[0, 1] == 1.0 and o[1].max() == 0.0
    assert greedy_match(o) == [(0, 1)]  # best first; then row 0 is used, and row 1 overlaps nothing


def _frames(*keys):
    return [FrameInfo(s, f, None, 200, 100) for s, f in keys]


def test_csv_truth_matching_rules(tmp_path):
    csv_path = tmp_path / "truth.csv"
    csv_path.write_text(
        "source,frame,left,top,right,bottom,identity\n"
        "clip.mp4,0,10,10,50,50,ann\n"
        "clip.mp4,0,100,10,140,50,unknown\n"      # matched but not scored
        "clip.mp4,0,150,10,190,50,not_a_face\n"   # neither scored nor in the recall denominator
        "clip.mp4,6,10,10,50,50,ann\n"            # frame 6 not sampled: left out
        "clip.mp4,12,10,10,50,50,bob\n"           # sampled, no detection: a miss
        "other.mp4,0,10,10,50,50,cat\n"           # source not in the run: left out
    )
    truth = load_truth(str(csv_path))
    sources = ["videos/clip.mp4"] * 3
    frames = [0, 0, 0]
    boxes = np.array([[100, 12, 140, 52], [12, 10, 50, 50], [60, 60, 70, 70]])
    m = truth.match(sources, frames, boxes, _frames(("videos/clip.mp4", 0), ("videos/clip.mp4", 12)))
    assert m.faces.tolist() == [1] and m.identities == ["ann"]
    assert (m.n_truth, m.n_detected, m.n_left_out) == (3, 2, 2)
    assert m.detection_recall == pytest.approx(2 / 3)


def test_folder_truth_takes_the_face_nearest_the_centre():
    boxes = np.array([[0, 0, 20, 20], [90, 40, 110, 60], [10, 10, 30, 30]])
    m = FolderTruth().match(["p/ann/1.jpg", "p/ann/1.jpg", "p/bob/2.jpg"], [None] * 3, boxes,
                            _frames(("p/ann/1.jpg", None), ("p/bob/2.jpg", None), ("p/cat/3.jpg", None)))
    assert m.faces.tolist() == [1, 2] and m.identities == ["ann", "bob"]
    assert (m.n_truth, m.n_detected) == (3, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("source,frame,left,top,right,bottom\nclip.mp4,0,1,1,5,5\n", "missing column(s) identity"),
        ("source,frame,left,top,right,bottom,identity\nclip.mp4,zero,1,1,5,5,ann\n", "line 2: frame and box must be numbers"),
        ("source,frame,left,top,right,bottom,identity\nclip.mp4,0,5,1,5,5,ann\n", "empty box"),
        ("source,frame,left,top,right,bottom,identity\n", "has no rows"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "not a CSV text file"),
    ],
)
def test_bad_truth_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "truth.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TruthError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CsvTruth(path)


def test_truth_that_matches_no_sampled_frame_is_an_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("source,frame,left,top,right,bottom,identity\nelsewhere.mp4,0,1,1,5,5,ann\n")
    with pytest.raises(TruthError, match="no truth row is on a frame this run sampled"):
        load_truth(str(path)).match([], [], np.zeros((0, 4)), _frames(("clip.mp4", 0)))
    with pytest.raises(TruthError, match="no such truth file"):
        load_truth(str(tmp_path / "nope.csv"))


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory, request) -> Path:
    from conftest import LFW, need

    need(LFW)
    root = tmp_path_factory.mktemp("eval")
    for person in ["Colin_Powell", "Serena_Williams", "Gloria_Macapagal_Arroyo"]:
        (root / "photos" / person).mkdir(parents=True)
        for f in sorted((LFW / person).glob("*.jpg"))[:4]:
            shutil.copy(f, root / "photos" / person / f.name)
    r = cli("run", str(root / "photos"), "-o", str(root / "out"), "-q", "--set", "runtime.workers=2")
    assert r.returncode == 0, r.stderr
    return root / "out"


@pytest.mark.slow
def test_evaluate_command_prints_every_metric(photo_run):
    r = cli("evaluate", str(photo_run), "--truth", "folders", "--json")
    assert r.returncode == 0, r.stderr
    scores = json.loads(r.stdout)
    assert list(scores)[: len(METRIC_KEYS)] == list(METRIC_KEYS)
    assert scores["n_identities"] == 3 and scores["n_faces_scored"] == 12
    assert scores["detection_recall"] == 1.0 and scores["bcubed_f"] > 0.9
    plain = cli("evaluate", str(photo_run), "--truth", "folders")
    assert plain.returncode == 0 and "bcubed_f" in plain.stdout
    bad = cli("evaluate", str(photo_run), "--truth", str(photo_run / "manifest.json"))
    assert bad.returncode == 2 and "missing column" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("evaluate", str(photo_run.parent), "--truth", "folders").stderr.count("no manifest") == 1


@pytest.mark.slow
def test_sweep_writes_csv_and_plot_and_reports_the_best(photo_run, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("truth: folders\nfixed:\n  postprocess.min_csize: 1\ngrid:\n"
                    "  clustering.algorithm: [hac, chinese_whispers, rank_order]\n"
                    "  clustering.distance_threshold: [0.05, 0.4]\n")
    r = cli("sweep", str(photo_run), "--grid", str(grid))
    assert r.returncode == 0, r.stderr
    lines = (photo_run / "sweeps" / "grid.csv").read_text().splitlines()
    assert len(lines) == 7 and lines[0].startswith("clustering.algorithm,clustering.distance_threshold,nmi")
    rows = [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    hac = {float(row["clustering.distance_threshold"]): float(row["bcubed_f"])
           for row in rows if row["clustering.algorithm"] == "hac"}
    assert hac[0.4] > hac[0.05]  # a cut too tight splits everyone: the sweep must see it
    assert (photo_run / "sweeps" / "grid.png").stat().st_size > 10_000
    assert "best bcubed_f" in r.stdout and "clustering.distance_threshold=0.4" in r.stdout
    for key in ("detection.upsample", "output.crop_margin"):  # an extraction section, an extraction output key
        grid.write_text(f"grid:\n  {key}: [0, 1]\n")
        bad = cli("sweep", str(photo_run), "--grid", str(grid), "--truth", "folders")
        assert bad.returncode == 2 and "cannot be swept" in bad.stderr and key in bad.stderr
