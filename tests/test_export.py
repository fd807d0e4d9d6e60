"""`person-cluster export`: a run's people as ImageFolder, YOLO (Ultralytics) and CSV training sets, written only
inside DEST and never half-written."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from person_cluster.export import ExportError, export


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "person_cluster", *args], check=False, capture_output=True, text=True,
                          timeout=300)


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_folders_hold_each_persons_crops(lfw12_run, tmp_path):
    m = _manifest(lfw12_run)
    r = cli("export", str(lfw12_run), str(tmp_path / "set"), "--format", "folders")
    assert r.returncode == 0, r.stderr
    got = {p.name: len(list(p.glob("*.jpg"))) for p in (tmp_path / "set").iterdir()}
    assert got == {Path(c["folder"]).name: c["size"] for c in m["clusters"]} and len(got) >= 3
    assert "unassigned" not in got


def test_yolo_has_images_labels_and_the_names_ultralytics_reads(lfw12_run, tmp_path):
    m = _manifest(lfw12_run)
    dest = tmp_path / "yolo"
    summary = export(lfw12_run, dest, "yolo")
    data = yaml.safe_load((dest / "data.yaml").read_text())
    names = [Path(c["folder"]).name for c in sorted(m["clusters"], key=lambda c: c["id"])]
    if any(f["cluster"] < 0 for f in m["faces"]):
        names.append("unassigned")
    assert data["names"] == dict(enumerate(names)) and data["train"] == data["val"] == "images"
    assert Path(data["path"]) == dest.resolve()
    assert len(list((dest / "images").iterdir())) == len(m["frames"]) == summary["images"]
    lines = [line.split() for p in (dest / "labels").glob("*.txt") for line in p.read_text().splitlines()]
    assert len(lines) == len(m["faces"])
    per_class = Counter(int(line[0]) for line in lines)
    for c in m["clusters"]:
        assert per_class[c["id"]] == c["size"]
    assert all(0 <= float(v) <= 1 for line in lines for v in line[1:])
    assert {p.stem for p in (dest / "images").iterdir()} == {p.stem for p in (dest / "labels").iterdir()}


def test_csv_has_one_row_per_face(lfw12_run, tmp_path):
    m = _manifest(lfw12_run)
    export(lfw12_run, tmp_path / "c", "csv")
    rows = list(csv.DictReader((tmp_path / "c" / "faces.csv").open()))
    assert len(rows) == len(m["faces"])
    assert Counter(r["person"] for r in rows) == Counter(
        next((Path(c["folder"]).name for c in m["clusters"] if c["id"] == f["cluster"]), "unassigned")
        for f in m["faces"])


def test_dest_must_be_new_or_empty_and_bad_requests_are_one_line(lfw12_run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    r = cli("export", str(lfw12_run), str(tmp_path / "full"), "--format", "csv")
    assert r.returncode == 2 and "not an empty folder" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    r = cli("export", str(tmp_path / "nothing"), str(tmp_path / "d"), "--format", "csv")
    assert r.returncode == 2 and "no manifest" in r.stderr and not (tmp_path / "d").exists()
    with pytest.raises(ExportError, match="--format"):
        export(lfw12_run, tmp_path / "d", "coco")
    with pytest.raises(ExportError, match="no person has a name yet"):
        export(lfw12_run, tmp_path / "d", "folders", named_only=True)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("hostile", ["../../../../etc/hostname", "/etc/hostname", "people/link.jpg"])
def test_a_manifest_naming_files_outside_out_is_refused_and_dest_is_left_clean(lfw12_run, tmp_path, hostile):
    """A tampered manifest (a path climbing out of OUT, an absolute path, a symlink leading out) reads nothing
    outside OUT and leaves no half-written DEST."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(lfw12_run, out, symlinks=True)
    (out / "people" / "link.jpg").symlink_to("/etc/hostname")
    m = _manifest(out)
    m["faces"][-1]["crop"] = hostile
    m["faces"][-1]["cluster"] = m["clusters"][0]["id"]
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportError, match="outside OUT"):
        export(out, tmp_path / "dest", "folders")
    assert not (tmp_path / "dest").exists()


def test_a_crop_removed_since_the_run_is_one_line(lfw12_run, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(lfw12_run, out)
    m = _manifest(out)
    (out / next(f for f in m["faces"] if f["cluster"] >= 0)["crop"]).unlink()
    r = cli("export", str(out), str(tmp_path / "dest"), "--format", "folders")
    assert r.returncode == 2 and "missing" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("content", [None, "{not json", "[]", '{"faces": [], "frames": []}', "\udcff"])
def test_every_command_reading_a_manifest_refuses_a_bad_one_in_one_line(tmp_path, content):
    """evaluate, export and review read OUT's manifest through one reader, with one message per problem."""
    out = tmp_path / "out"
    out.mkdir()
    if content is not None:
        (out / "manifest.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    expected = "no manifest" if content is None else "unreadable manifest"
    for args in (("evaluate", str(out), "--truth", "folders"), ("export", str(out), str(tmp_path / "d"), "--format", "csv"),
                 ("review", str(out), "--port", "0")):
        r = cli(*args)
        assert r.returncode == 2 and r.stderr.count(expected) == 1, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "d").exists()
