"""The user's decisions: every action saved at once and undoable, two writers never lose each other's work."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from person_cluster import api
from person_cluster.config import Config
from person_cluster.export import export
from person_cluster.review import DecisionError, Decisions, face_key, match_faces

A = [face_key("clip.mp4", k, [10, 10, 50, 50]) for k in range(4)]
B = [face_key("clip.mp4", k, [100, 10, 140, 50]) for k in range(4)]


def test_actions_persist_and_undo_takes_back_exactly_the_last_one(tmp_path):
    with Decisions(tmp_path) as d:
        ross = d.name(A, "Ross")
        joey = d.name(B, "  Joey \n")
        assert d.move([A[3]], B) == joey  # a face of Ross's cluster is Joey
        d.mark_not_face([B[0]])
        assert d.hide(B[1:]) == joey
        assert d.set_cover(A[:3], A[1]) == ross
    with Decisions(tmp_path) as d:  # reopened: everything was saved
        people = d.people()
        assert {p.name for p in people.values()} == {"Ross", "Joey"} and people[joey].hidden
        assert people[ross].cover == A[1]
        assigned = d.assigned()
        assert [assigned.get(f) for f in A] == [ross, ross, ross, joey]
        assert B[0] not in assigned and d.not_faces() == {B[0]}
        assert d.undo() == "cover" and d.people()[ross].cover is None
        assert d.undo() == "hide" and not d.people()[joey].hidden
        assert d.undo() == "not_a_face" and d.assigned()[B[0]] == joey and not d.not_faces()
        assert d.undo() == "move" and d.assigned()[A[3]] == ross


def test_merge_and_split(tmp_path):
    with Decisions(tmp_path) as d:
        ross = d.name(A[:2], "Ross")
        other = d.move(A[2:], None)  # split off into a new, unnamed person
        assert d.people()[other].name == ""
        assert d.merge(A[:2], A[2:]) == ross
        assert set(d.assigned().values()) == {ross} and list(d.people()) == [ross]
        with pytest.raises(DecisionError, match="itself"):
            d.merge(A, A)
        with pytest.raises(DecisionError, match="empty"):
            d.name(A, "   ")
        with pytest.raises(DecisionError, match="no faces"):
            d.name([], "x")
        with pytest.raises(DecisionError, match="one of the person's faces"):
            d.set_cover(A, B[0])
        assert d.people()[ross].name == "Ross"  # the refused actions changed nothing


def test_hostile_names_are_kept_as_text(tmp_path):
    with Decisions(tmp_path) as d:
        p = d.name(A, "<img src=x onerror=alert(1)>")
        assert d.name(A, "../../etc'; DROP TABLE people; --") == p
        assert d.people()[p].name == "../../etc'; DROP TABLE people; --"


def test_two_tabs_writing_at_once_lose_nothing(tmp_path):
    Decisions(tmp_path).close()
    errors = []

    def tab(faces, name):
        try:
            with Decisions(tmp_path) as d:
                for f in faces:
                    d.name([f], f"{name} {f[-9:]}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=tab, args=(faces, n)) for faces, n in ((A, "a"), (B, "b"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    with Decisions(tmp_path) as d:
        assert set(d.assigned()) == set(A) | set(B) and len(d.people()) == 8


def test_decided_faces_are_found_again_after_boxes_moved_a_little():
    keys = [face_key("clip.mp4", 0, [12, 11, 51, 52]), face_key("clip.mp4", 0, [100, 10, 140, 50])]
    moved = face_key("clip.mp4", 0, [10, 10, 50, 50])
    gone = face_key("clip.mp4", 6, [10, 10, 50, 50])
    assert match_faces(keys, {moved, keys[1], gone}) == {moved: keys[0], keys[1]: keys[1]}


def test_a_damaged_decisions_file_is_one_line(tmp_path):
    (tmp_path / "review.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(DecisionError, match="not a usable decisions file"):
        Decisions(tmp_path)


def _keys(m: dict, cluster: int) -> list[str]:
    return [face_key(f["source"], f["frame"], f["bbox"]) for f in m["faces"] if f["cluster"] == cluster]


def _who(m: dict) -> dict[str, int]:
    return {face_key(f["source"], f["frame"], f["bbox"]): f["cluster"] for f in m["faces"]}


@pytest.mark.pipeline
def test_decisions_survive_reclustering_and_name_the_outputs(lfw12_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(lfw12_run, out)
    m = json.loads((out / "manifest.json").read_text())
    big = [c["id"] for c in m["clusters"] if c["size"] >= 2][:3]  # largest first
    assert len(big) == 3, m["clusters"]
    a, b, c = (_keys(m, k) for k in big)
    with Decisions(out) as d:
        colin = d.name(a, "Colin Powell")
        con = d.name(b, "CON")
        d.move([a[0]], b)  # the user says this face is CON's
        d.mark_not_face([c[0]])
    # A threshold that would put everyone together: the named people stay apart, each face where the user put it.
    m2 = api.recluster(out, ["clustering.distance_threshold=1.2", "postprocess.merge_face_threshold=0.9"])
    who = _who(m2)
    named = {cl["name"]: cl for cl in m2["clusters"] if cl["name"]}
    assert set(named) == {"Colin Powell", "CON"}
    assert {who[k] for k in a[1:]} == {named["Colin Powell"]["id"]}
    assert {who[k] for k in [a[0], *b]} == {named["CON"]["id"]}
    assert who[c[0]] == -2 and m2["summary"]["not_a_face"] == 1
    assert named["Colin Powell"]["folder"] == "people/Colin_Powell" and named["CON"]["folder"] == "people/_CON"
    assert named["Colin Powell"]["person"] == colin and named["CON"]["person"] == con
    assert (out / "people" / "Colin_Powell" / Path(_crop(m2, a[1])).name).is_file()
    classes = (out / "annotations" / "classes.txt").read_text().splitlines()
    assert "Colin_Powell" in classes and "_CON" in classes
    not_face = next(f for f in m2["faces"] if f["cluster"] == -2)
    frame = next(fr for fr in m2["frames"] if (fr["source"], fr["frame"]) == (not_face["source"], not_face["frame"]))
    assert len((out / frame["labels"]).read_text().splitlines()) == sum(
        1 for f in m2["faces"] if (f["source"], f["frame"]) == (not_face["source"], not_face["frame"])) - 1
    # Export follows the decisions: the names, the faces each holds, no not-a-face anywhere.
    export(out, tmp_path / "folders", "folders")
    # (The loose threshold let undecided faces join one of them; the decided ones are where the user put them.)
    files = {p.parent.name: set() for p in (tmp_path / "folders").glob("*/*.jpg")}
    for p in (tmp_path / "folders").glob("*/*.jpg"):
        files[p.parent.name].add(p.name)
    assert {Path(_crop(m2, k)).name for k in a[1:]} <= files["Colin_Powell"]
    assert {Path(_crop(m2, k)).name for k in [a[0], *b]} <= files["_CON"]
    assert Path(_crop(m2, a[0])).name not in files["Colin_Powell"]
    assert Path(_crop(m2, c[0])).name not in set().union(*files.values())
    assert sum(len(v) for v in files.values()) == sum(cl["size"] for cl in m2["clusters"])
    export(out, tmp_path / "yolo", "yolo")
    names = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())["names"]
    assert {"Colin Powell", "CON"} <= set(names.values())
    # A re-run from scratch (--overwrite) keeps the decisions file, and they still apply.
    m3 = api.run([m["inputs"][0]["source"].rsplit("/", 2)[0]], out, Config().with_overrides({"runtime.workers": 1}),
                 overwrite=True, progress=False)
    assert {cl["name"] for cl in m3["clusters"] if cl["name"]} == {"Colin Powell", "CON"}


def _crop(m: dict, key: str) -> str:
    return next(f["crop"] for f in m["faces"] if face_key(f["source"], f["frame"], f["bbox"]) == key)


def test_refusals_say_exactly_why_and_hiding_is_its_own_step(tmp_path):
    with Decisions(tmp_path) as d:
        ross = d.name(A, "Ross")
        refusals = {"cannot merge a person with itself": lambda: d.merge(A[:2], A[:2]),
                    "no faces selected": lambda: d.move([], B),
                    "no faces given": lambda: d.name([], "x"),
                    "the cover face must be one of the person's faces": lambda: d.set_cover(A, B[0])}
        for message, act in refusals.items():
            with pytest.raises(DecisionError) as err:
                act()
            assert str(err.value) == message
        with pytest.raises(DecisionError) as err:
            d.mark_not_face([])
        assert str(err.value) == "no faces selected"
        hidden = d.move(B[:2], None, hidden=True)  # off to a new, hidden person: one step called "hide"
        assert d.people()[hidden].hidden and hidden != ross
        moved = d.move(B[2:], B[:1], hidden=True)  # to someone: a move, and nobody new is hidden
        assert moved == hidden and d.undo() == "move"
        assert d.undo() == "hide" and hidden not in d.people()
        split = d.move(B[:2], None)
        assert not d.people()[split].hidden and d.undo() == "move"


def test_faces_someone_has_keep_them_when_others_are_named_or_merged(tmp_path):
    with Decisions(tmp_path) as d:
        ross = d.name(A[:3], "Ross")
        joey = d.name(B[:2], "Joey")
        # Naming a group where most faces are Ross's: the faces nobody had join Ross, Joey's stay Joey's.
        assert d.name([*A[:3], A[3], B[0]], "Ross G.") == ross
        assigned = d.assigned()
        assert assigned[A[3]] == ross and assigned[B[0]] == joey and d.people()[ross].name == "Ross G."
        # A merge moves the other person whole; its name is kept only if the kept one has none.
        unnamed = d.move([B[3]], None)
        assert d.merge([B[3]], B[:2]) == unnamed
        assert d.people()[unnamed].name == "Joey" and joey not in d.people()
        assert {f: p for f, p in d.assigned().items() if f in B} == {B[0]: unnamed, B[1]: unnamed, B[3]: unnamed}
