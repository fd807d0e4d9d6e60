"""One OUT as a library: add and remove inputs, name and list people; numbers, names and decisions survive."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from person_cluster import api, library
from person_cluster.config import Config, ConfigError
from person_cluster.review import NOT_A_FACE, Decisions, face_key

pytestmark = pytest.mark.pipeline  # every test here runs the extraction on a real clip or folder

KITCHEN, HAMILTON = "friends_kitchen_clip.mp4", "short_hamilton_clip.mp4"
_RUNS: dict[str, Path] = {}


@pytest.fixture
def kitchen(tmp_path_factory, tmp_path) -> Path:
    """A copy of a default run (1 frame/s) of the kitchen clip, made once per session."""
    from conftest import VIDEOS, need

    if "kitchen" not in _RUNS:
        out = tmp_path_factory.mktemp("kitchen") / "out"
        api.run([str(need(VIDEOS) / KITCHEN)], out, Config(), progress=False)
        _RUNS["kitchen"] = out
    copy = tmp_path / "out"
    shutil.copytree(_RUNS["kitchen"], copy)
    return copy


def _clip(name: str) -> str:
    from conftest import VIDEOS

    return str(VIDEOS / name)


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _key(f: dict) -> str:
    return face_key(f["source"], f["frame"], f["bbox"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "person_cluster.cli", *args], capture_output=True, text=True,
                          timeout=600, check=False)


def _written_from_scratch_equals(out: Path, tmp_path: Path) -> None:
    """OUT's outputs, written piecemeal by add/remove/name, are what writing them all anew gives."""
    from person_cluster.cache import FeatureCache
    from person_cluster.outputs import write_outputs
    from person_cluster.review import apply_decisions

    fresh = tmp_path / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(out, fresh)
    for name in ("people", "montages", "annotations", "timelines", "cast.csv"):
        shutil.rmtree(fresh / name) if (fresh / name).is_dir() else (fresh / name).unlink(missing_ok=True)
    m = _manifest(out)
    with FeatureCache.open_existing(fresh / "features.sqlite") as cache:
        table = cache.load_table()
        again = write_outputs(fresh, cache, table, np.array([f["cluster"] for f in m["faces"]]),
                              Config.from_dict(m["config"]), np.array([f["track"] for f in m["faces"]]),
                              apply_decisions(fresh, table), None, m["next_person"], replot=False)
    assert again == m
    def outputs(root: Path) -> dict[Path, bytes]:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()
                and (p.relative_to(root).parts[0] in ("people", "montages", "annotations", "timelines")
                     or p.name == "cast.csv")}

    assert outputs(fresh) == outputs(out)


def test_add_keeps_numbers_names_and_decisions_and_remove_takes_it_back(kitchen, tmp_path):
    before = _manifest(kitchen)
    rachel = before["cast"][0]["cluster"]
    library.name(kitchen, f"person_{rachel:03d}", "Rachel")
    named = _manifest(kitchen)
    assert (kitchen / "people" / "Rachel").is_dir() and not (kitchen / f"people/person_{rachel:03d}").exists()
    assert [(f["id"], f["cluster"]) for f in named["faces"]] == [(f["id"], f["cluster"]) for f in before["faces"]]
    odd = next(f for f in named["faces"] if f["cluster"] != rachel)
    with Decisions(kitchen) as d:
        d.mark_not_face([_key(odd)])

    manifest, summary = library.add(kitchen, [_clip(HAMILTON), _clip(KITCHEN)], progress=False)
    assert summary.added == [_clip(HAMILTON)] and summary.already == [_clip(KITCHEN)]
    old = {f["id"]: f for f in named["faces"]}
    for f in manifest["faces"]:
        if f["id"] in old:  # the kitchen's faces keep their ids, their people and their numbers
            assert _key(f) == _key(old[f["id"]])
            assert f["cluster"] == (NOT_A_FACE if f["id"] == odd["id"] else old[f["id"]]["cluster"])
    new = [f for f in manifest["faces"] if f["source"] == _clip(HAMILTON)]
    assert new and all(f["id"] > max(old) for f in new)
    assert {c["id"]: c["name"] for c in manifest["clusters"]}[rachel] == "Rachel"
    assert {f["cluster"] for f in new if f["cluster"] >= 0}.isdisjoint({c["id"] for c in named["clusters"]})
    assert manifest["next_person"] > named["next_person"]
    assert json.loads((kitchen / "run.json").read_text())["people_kept"] >= len(named["clusters"]) - 1
    _written_from_scratch_equals(kitchen, tmp_path)

    manifest, removed = library.remove(kitchen, [_clip(HAMILTON)])
    assert removed == [_clip(HAMILTON)]
    assert [(f["id"], f["cluster"]) for f in manifest["faces"]] == [
        (f["id"], NOT_A_FACE if f["id"] == odd["id"] else f["cluster"]) for f in named["faces"]]
    assert not [p for p in (kitchen / "frames").iterdir() if "short_hamilton" in p.name]
    _written_from_scratch_equals(kitchen, tmp_path)
    # A full re-clustering afterwards applies every decision as before.
    full = api.cluster_out(kitchen)
    assert {c["id"]: c["name"] for c in full["clusters"]}[rachel] == "Rachel"
    assert next(f for f in full["faces"] if f["id"] == odd["id"])["cluster"] == NOT_A_FACE
    with Decisions(kitchen) as d:
        assert _key(odd) in d.not_faces() and any(p.name == "Rachel" for p in d.people().values())


def test_the_match_of_an_add_knows_the_names_the_user_gave(kitchen, monkeypatch):
    """Two people named alike (two pieces of one person) are one person to the match of an add
    (clustering/incremental.py): the add hands it every name, by person number."""
    from person_cluster.clustering import incremental

    first, second = (row["cluster"] for row in _manifest(kitchen)["cast"][:2])
    library.name(kitchen, f"person_{first:03d}", "Rachel")
    library.name(kitchen, f"person_{second:03d}", "Rachel")
    seen = []
    real = incremental.cluster_added
    monkeypatch.setattr(incremental, "cluster_added", lambda *a: seen.append(a[-1]) or real(*a))
    library.add(kitchen, [_clip(HAMILTON)], progress=False)
    assert seen == [{first: "Rachel", second: "Rachel"}]


def test_add_refuses_another_extraction_setting_and_unusable_inputs_changing_nothing(kitchen, tmp_path):
    before = (kitchen / "manifest.json").read_bytes()
    with pytest.raises(ConfigError, match="sampling.capture_interval_sec"):
        library.add(kitchen, [_clip(HAMILTON)], ["sampling.capture_interval_sec=2"], progress=False)
    r = _cli("add", str(kitchen), str(tmp_path / "missing.mp4"))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("person-cluster: error: no usable input")
    r = _cli("add", str(tmp_path), _clip(HAMILTON))
    assert r.returncode == 2 and "no feature cache" in r.stderr
    assert (kitchen / "manifest.json").read_bytes() == before
    # A run of other inputs into an existing OUT points at add.
    r = _cli("run", _clip(HAMILTON), "-o", str(kitchen), "-q")
    assert r.returncode == 2 and "person-cluster add" in r.stderr


def test_add_extracts_as_an_out_written_before_a_setting_existed(tmp_path):
    """An OUT from before cloth.colour and face.align (its clothing: the CNN's features alone; its chips aligned by
    dlib's landmarks alone) records neither key nor "+hsv" in its clothing model: add must extract the new input
    as that OUT was, not with today's defaults."""
    from conftest import VIDEOS, need

    from person_cluster.cache import CACHE_NAME, FeatureCache

    out = tmp_path / "out"
    old = Config().with_overrides({"cloth.colour": False, "face.align": "dlib", "sampling.capture_interval_sec": 2.0})
    api.run([str(need(VIDEOS) / HAMILTON)], out, old, progress=False)
    with FeatureCache.open_existing(out / CACHE_NAME) as cache:
        for key in ("config", "extraction"):
            meta = cache.get_meta(key)
            settings = meta if key == "config" else meta["extraction"]
            del settings["cloth"]["colour"], settings["face"]["align"]
            cache.set_meta(key, meta)
        dim = cache.load_table().cloth.shape[1]
    r = _cli("add", str(out), _clip(KITCHEN))
    assert r.returncode == 0, r.stderr
    with FeatureCache.open_existing(out / CACHE_NAME) as cache:
        table = cache.load_table()
    assert table.cloth.shape[1] == dim == 24  # features.3 alone, for the old input and the added one
    assert {Path(s).name for s in table.sources} == {HAMILTON, KITCHEN}
    # The added clip's chips were aligned by dlib's landmarks alone: its descriptors are those of a run with
    # face.align: dlib, not today's.
    kitchen = np.array([Path(s).name == KITCHEN for s in table.sources])
    alone = tmp_path / "alone"
    for align, same in (("dlib", True), ("both", False)):
        shutil.rmtree(alone, ignore_errors=True)
        api.run([_clip(KITCHEN)], alone, old.with_overrides({"face.align": align}), progress=False)
        with FeatureCache.open_existing(alone / CACHE_NAME) as cache:
            face = cache.load_table().face
        assert face.shape == table.face[kitchen].shape
        assert np.allclose(face, table.face[kitchen], atol=1e-4) is same, align


def test_people_and_name_for_scripts(kitchen):
    rows = json.loads(_cli("people", str(kitchen), "--json").stdout)
    assert [r["person"] for r in rows] == [f"person_{c['cluster']:03d}" for c in _manifest(kitchen)["cast"]]
    assert all(r["name"] is None and r["videos"] == [_clip(KITCHEN)] for r in rows)
    first = rows[0]["person"]
    r = _cli("name", str(kitchen), first, "  Rachel   Green ")
    assert r.returncode == 0 and "'Rachel Green'" in r.stdout, r.stderr
    assert json.loads(_cli("people", str(kitchen), "--json").stdout)[0]["name"] == "Rachel Green"
    r = _cli("name", str(kitchen), "Rachel Green", "Rachel")  # by current name
    assert r.returncode == 0 and (kitchen / "people" / "Rachel").is_dir(), r.stderr
    assert _cli("name", str(kitchen), first, "Rachel G").returncode == 0  # the number works after naming
    for person, name, message in ((first, " ", "must not be empty"), (first, "x" * 201, "at most 200"),
                                  ("person_999", "A", "no person 'person_999'"), ("Nobody", "A", "no person")):
        r = _cli("name", str(kitchen), person, name)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = _cli("people", str(kitchen / "people"))
    assert r.returncode == 2 and "no manifest" in r.stderr


def test_remove_takes_a_photo_folder_out_and_refuses_an_unknown_source(lfw12_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(lfw12_run, out)
    before = _manifest(out)
    folder = str(Path(before["faces"][0]["source"]).parent)
    keep = next(f for f in before["faces"] if not f["source"].startswith(folder))
    with Decisions(out) as d:
        d.name([_key(keep)], "Kept")
    with pytest.raises(library.LibraryError, match="not an input"):
        library.remove(out, [str(tmp_path / "elsewhere")])
    assert (out / "manifest.json").read_bytes() == (lfw12_run / "manifest.json").read_bytes()
    manifest, removed = library.remove(out, [folder])
    assert removed and all(s.startswith(folder) for s in removed)
    assert not [f for f in manifest["faces"] if f["source"].startswith(folder)]
    assert [i for i in manifest["inputs"] if i["source"].startswith(folder)] == []
    kept = next(f for f in manifest["faces"] if _key(f) == _key(keep))
    assert {c["id"]: c["name"] for c in manifest["clusters"]}[kept["cluster"]] == "Kept"
    for f in manifest["faces"]:
        assert (out / f["crop"]).is_file()


def test_an_interrupted_add_leaves_out_as_it_was_then_resumes_to_the_same_result(kitchen, tmp_path, monkeypatch):
    from person_cluster import pipeline

    twin = tmp_path / "twin"
    shutil.copytree(kitchen, twin)
    expected, _ = library.add(twin, [_clip(HAMILTON)], progress=False)
    before = (kitchen / "manifest.json").read_bytes()
    real, commits = pipeline._Batch.commit, []

    def dies_after_the_first(self):
        if commits:
            raise KeyboardInterrupt
        commits.append(1)
        real(self)

    monkeypatch.setattr(pipeline._Batch, "commit", dies_after_the_first)
    monkeypatch.setattr(pipeline._Batch, "full", lambda self, n: self.n_frames >= 2)  # commit every 2 frames
    with pytest.raises(KeyboardInterrupt):
        library.add(kitchen, [_clip(HAMILTON)], progress=False)
    assert (kitchen / "manifest.json").read_bytes() == before  # as it was: the half-read clip is not clustered
    assert _manifest(kitchen)["faces"] == json.loads(before)["faces"]
    api.cluster_out(kitchen)  # a clustering meanwhile does not take the half-read input either
    assert not [f for f in _manifest(kitchen)["faces"] if f["source"] == _clip(HAMILTON)]
    monkeypatch.undo()
    resumed, summary = library.add(kitchen, [_clip(HAMILTON)], progress=False)
    assert summary.added == [_clip(HAMILTON)]
    assert [(f["id"], f["cluster"], f["bbox"]) for f in resumed["faces"]] == [
        (f["id"], f["cluster"], f["bbox"]) for f in expected["faces"]]


def test_decisions_taken_while_an_add_runs_are_all_kept(kitchen):
    """Two processes at once: `add` in one, the page's decisions in another; nothing is lost."""
    faces = [_key(f) for f in _manifest(kitchen)["faces"]]
    proc = subprocess.Popen([sys.executable, "-m", "person_cluster.cli", "add", str(kitchen), _clip(HAMILTON), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    names = []
    with Decisions(kitchen) as d:
        for k in range(12):
            names.append(f"P{k}")
            d.name([faces[k]], names[-1])
            time.sleep(0.2)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    with Decisions(kitchen) as d:
        assert sorted(p.name for p in d.people().values()) == sorted(names)
    manifest = api.cluster_out(kitchen)
    assert {"P0", "P11"} <= {c["name"] for c in manifest["clusters"] if c["name"]} | set(names)
    assert np.all([(kitchen / f["crop"]).is_file() for f in manifest["faces"]])
