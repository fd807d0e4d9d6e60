"""The whole job through the command line, on real inputs: a shared video and a folder of LFW photos."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from person_cluster.outputs.naming import safe_name
from person_cluster.outputs.yolo import yolo_line


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "person_cluster", *args], check=False, capture_output=True, text=True,
                          timeout=600)


def check_outputs(out: Path) -> dict:
    """Every file the manifest names exists, and every stage produced something."""
    m = json.loads((out / "manifest.json").read_text())
    assert set(m) >= {"version", "config", "inputs", "faces", "clusters", "frames"}
    assert m["version"] == 1
    assert m["frames"], "sampling produced no frames"
    assert m["faces"], "detection produced no faces"
    assert m["clusters"], "clustering produced no clusters"
    for face in m["faces"]:
        assert set(face) >= {"id", "source", "frame", "time_s", "bbox", "cluster", "crop"}
        assert (out / face["crop"]).is_file()
        left, top, right, bottom = face["bbox"]
        assert 0 <= left < right and 0 <= top < bottom
    ids = {c["id"] for c in m["clusters"]}
    assert {f["cluster"] for f in m["faces"]} <= ids | {-1}
    for c in m["clusters"]:
        assert (out / c["folder"]).is_dir() and (out / c["montage"]).is_file()
        assert c["size"] == sum(f["cluster"] == c["id"] for f in m["faces"]) >= m["config"]["postprocess"]["min_csize"]
    classes = (out / "annotations" / "classes.txt").read_text().split()
    assert len(list((out / "annotations").glob("*.txt"))) == len(m["frames"]) + 1
    n_lines = 0
    for fr in m["frames"]:
        for line in (out / fr["labels"]).read_text().splitlines():
            cls, *xywh = line.split()
            assert 0 <= int(cls) < len(classes) and all(0 <= float(v) <= 1 for v in xywh)
            n_lines += 1
        assert fr["image"] is None or (out / fr["image"]).is_file()
    assert n_lines == len(m["faces"])
    plot = cv2.imread(str(out / "clusters.png"))
    assert plot is not None and plot.shape == (800, 1000, 3) and plot.std() > 5  # a real, non-blank figure
    return m


@pytest.mark.slow
def test_video_run_then_recluster_from_cache(tmp_path, videos):
    video = tmp_path / "clip one.mp4"  # a space in the name, and a copy we can delete later
    shutil.copy(videos / "short_hamilton_clip.mp4", video)
    out = tmp_path / "out"
    r = cli("run", str(video), "-o", str(out), "-q", "--set", "runtime.workers=2")
    assert r.returncode == 0, r.stderr
    m = check_outputs(out)
    assert len(m["frames"]) == 10 and all(f["source"] == str(video) for f in m["faces"])
    assert any(f["has_cloth_feature"] for f in m["faces"])

    video.unlink()  # re-clustering must not need the input
    r = cli("cluster", str(out), "-q", "--set", "clustering.distance_threshold=0.05", "--set", "postprocess.min_csize=1")
    assert r.returncode == 0, r.stderr
    m2 = check_outputs(out)
    assert m2["config"]["clustering"]["distance_threshold"] == 0.05
    assert len(m2["clusters"]) > len(m["clusters"])  # a much tighter cut splits people
    assert [f["bbox"] for f in m2["faces"]] == [f["bbox"] for f in m["faces"]]

    r = cli("cluster", str(out), "--set", "detection.upsample=0")
    assert r.returncode == 2 and "re-run" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_photo_folder_groups_people_the_same_with_any_worker_count(tmp_path, lfw):
    people = ["Colin_Powell", "Serena_Williams", "Gloria_Macapagal_Arroyo"]
    src = tmp_path / "photos"
    for p in people:
        (src / p).mkdir(parents=True)
        for f in sorted((lfw / p).glob("*.jpg"))[:5]:
            shutil.copy(f, src / p / f.name)
    manifests = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        r = cli("run", str(src), "-o", str(out), "-q", "--set", f"runtime.workers={workers}")
        assert r.returncode == 0, r.stderr
        manifests.append(check_outputs(out))
        assert all(f["frame"] is None and f["time_s"] is None for f in manifests[-1]["faces"])
    assert manifests[0]["faces"] == manifests[1]["faces"]  # results do not depend on the worker count

    # Crops and frames are made while extracting: re-clustering refuses the output settings that decide them
    # (their files would not match), with one line naming the key, and accepts the others.
    out = tmp_path / "out1"
    for change in ("output.crop_margin=1.5", "output.save_frames=false", "output.jpeg_quality=50"):
        r = cli("cluster", str(out), "--set", change)
        assert r.returncode == 2 and change.split("=")[0] in r.stderr and "--overwrite" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert json.loads((out / "manifest.json").read_text()) == manifests[0]  # refused: nothing rewritten
    first = out / manifests[0]["clusters"][0]["montage"]
    width = cv2.imread(str(first)).shape[1]
    r = cli("cluster", str(out), "-q", "--set", "output.montage_cell=64")
    assert r.returncode == 0, r.stderr
    assert check_outputs(out)["faces"] == manifests[0]["faces"]
    assert cv2.imread(str(first)).shape[1] * 112 == width * 64  # the same grid, with the new cell size

    # The centred face of each photo carries the folder's identity (the LFW convention).
    truth, pred = [], []
    for f in manifests[0]["faces"]:
        l, t, r_, b = f["bbox"]
        if abs((l + r_) / 2 - 75) < 25 and abs((t + b) / 2 - 75) < 30:
            truth.append(Path(f["source"]).parent.name)
            pred.append(f["cluster"] if f["cluster"] >= 0 else 1000 + f["id"])
    assert len(truth) >= 13
    assert normalized_mutual_info_score(truth, pred) >= 0.9


@pytest.mark.pipeline
def test_no_usable_input_is_one_line_and_nonzero(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    r = cli("run", str(tmp_path / "missing.mp4"), str(tmp_path / "notes.txt"), "-o", str(tmp_path / "out"), "-q")
    assert r.returncode == 2
    assert "no usable input" in r.stderr and "missing.mp4" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()  # refused before OUT is created


@pytest.mark.pipeline
def test_out_that_holds_other_files_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    r = cli("run", str(tmp_path), "-o", str(out), "-q")
    assert r.returncode == 2 and "not empty" in r.stderr
    assert (out / "thesis.docx").read_text() == "precious"


def test_yolo_line_and_safe_names():
    assert yolo_line(3, np.array([10, 20, 30, 60]), 100, 200) == "3 0.200000 0.200000 0.200000 0.200000"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("con") == "_con" and safe_name("") == "unnamed" and safe_name("Zoë Saldaña") == "Zoe_Saldana"
