"""Outputs written per person, only where they changed, and person numbers that last across re-clusterings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from person_cluster import api
from person_cluster.outputs.numbering import stable_numbers


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(run, out)
    return out


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("run.json",) and "features.sqlite" not in p.name}


def test_numbers_follow_the_people_they_named():
    keys = [f"f{i}" for i in range(9)]
    before = {"f0": 5, "f1": 5, "f2": 5, "f3": 2, "f4": 2, "f5": 7}
    # 0: person 5 minus a face; 1: person 2 plus person 5's third face; 2: person 7 and a new face; 3: new faces
    labels, nxt = stable_numbers(np.array([0, 0, 1, 1, 1, 2, 2, 3, -1]), keys, before, 8)
    assert labels.tolist() == [5, 5, 2, 2, 2, 7, 7, 8, -1] and nxt == 9
    # A merge keeps the number of the part that is the better match; the other number is retired, never reused.
    labels, nxt = stable_numbers(np.array([0, 0, 0, 0, 0, 0, 1, 1, -1]), keys, before, 8)
    assert labels.tolist() == [5, 5, 5, 5, 5, 5, 8, 8, -1] and nxt == 9
    # A split: the part with most of the person keeps the number.
    labels, nxt = stable_numbers(np.array([0, 1, 1, 2, 2, 3, 3, 3, 3]), keys, before, 8)
    assert labels.tolist() == [8, 5, 5, 2, 2, 7, 7, 7, 7] and nxt == 9
    # A first clustering numbers people as the clustering does (largest first).
    assert stable_numbers(np.array([1, 0, 0, -1]), keys[:4], None, 0)[0].tolist() == [1, 0, 0, -1]


def test_numbers_break_ties_toward_the_smaller_and_survive_empty_or_unassigned_clusterings():
    keys = [f"f{i}" for i in range(5)]
    # A cluster holding as many faces of person 5 as of person 7 keeps the smaller number, 5.
    assert stable_numbers(np.array([0, 0, 0, 0]), keys[:4], {"f0": 7, "f1": 5, "f2": 7, "f3": 5}, 9)[0].tolist() \
        == [5, 5, 5, 5]
    # Most faces win, whatever the numbers: 3 of person 1 against 2 of person 2.
    labels, _ = stable_numbers(np.array([0, 0, 0, 0, 0]), keys, {"f0": 1, "f1": 1, "f2": 1, "f3": 2, "f4": 2}, 9)
    assert labels.tolist() == [1] * 5
    # A person split in two equal parts: the first cluster (0) keeps the number, whichever comes first in the faces.
    labels, nxt = stable_numbers(np.array([1, 1, 0, 0]), keys[:4], dict.fromkeys(keys[:4], 5), 9)
    assert labels.tolist() == [9, 9, 5, 5] and nxt == 10
    # Nobody, or one cluster 0: nothing breaks and no number is used up for a cluster that does not exist.
    assert stable_numbers(np.array([], np.int64), [], {"f0": 1}, 4)[0].tolist() == []
    assert stable_numbers(np.array([], np.int64), [], {"f0": 1}, 4)[1] == 4
    assert stable_numbers(np.array([-1, -2]), keys[:2], {"f0": 1}, 4)[0].tolist() == [-1, -2]
    assert stable_numbers(np.array([-1, -2]), keys[:2], {"f0": 1}, 4)[1] == 4
    labels, nxt = stable_numbers(np.array([0, 0, -1]), keys[:3], {"f0": 3, "f2": 1}, 4)
    assert labels.tolist() == [3, 3, -1] and nxt == 4


def test_clustering_again_rewrites_nothing_and_restores_what_is_missing(lfw12_run, tmp_path):
    out = _copy(lfw12_run, tmp_path)
    before = _files(out)
    manifest = api.cluster_out(out)
    assert json.loads((out / "run.json").read_text())["people_written"] == 0
    assert _files(out) == before
    # A crop deleted by hand, and a folder that is not a person's: put right by the next clustering.
    person = manifest["clusters"][0]
    missing = next(f for f in manifest["faces"] if f["cluster"] == person["id"])["crop"]
    (out / missing).unlink()
    (out / "people" / "stray").mkdir()
    api.cluster_out(out)
    assert json.loads((out / "run.json").read_text())["people_written"] == 1
    assert _files(out) == before and not (out / "people" / "stray").exists()


def test_a_clustering_killed_while_writing_leaves_a_manifest_whose_files_are_all_there(lfw12_run, tmp_path,
                                                                                      monkeypatch):
    from person_cluster import outputs

    out = _copy(lfw12_run, tmp_path)
    old = json.loads((out / "manifest.json").read_text())
    real, calls = outputs.write_person, []

    def dies_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "write_person", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):  # every person rewritten: the montage size changed
        api.recluster(out, ["output.montage_cell=64"])
    assert json.loads((out / "manifest.json").read_text()) == old
    for f in old["faces"]:
        assert (out / f["crop"]).is_file()
    for c in old["clusters"]:
        assert (out / c["montage"]).is_file()
    monkeypatch.setattr(outputs, "write_person", real)
    again = api.recluster(out, ["output.montage_cell=64"])  # run again: finished
    assert again["faces"] == old["faces"] and json.loads((out / "run.json").read_text())["people_written"] > 1
