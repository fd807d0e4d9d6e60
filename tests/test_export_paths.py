"""Where export may read and write: no path from a manifest or a name ever leaves OUT (reading) or DEST (writing),
whatever a hand-edited manifest says; and what each format holds, to the byte, on a small OUT made here."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from person_cluster.export import ExportError, _in_out, _Writer, export
from person_cluster.outputs.naming import people_folders, safe_name

segments = st.one_of(
    st.sampled_from(["..", ".", "", "a", "b.jpg", "/", "//", "\\", "..\\..", "~", "%2e%2e", "\x00", "x" * 300, "é",
                     "link", "CON", "a/../..", "/etc", "/tmp"]),
    st.text(max_size=12))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """DEST and OUT inside a sandbox, with links in them leading out of them."""
    box = tmp_path_factory.mktemp("sandbox")
    dest, out = box / "dest", box / "out"
    (dest / "a").mkdir(parents=True)
    (out / "a").mkdir(parents=True)
    (out / "a" / "b.jpg").write_bytes(b"face")
    (box / "outside.jpg").write_bytes(b"secret")
    for root in (dest, out):
        (root / "link").symlink_to(box, target_is_directory=True)
        (root / "a" / "link").symlink_to(box / "outside.jpg")
    return box, dest, out


@settings(max_examples=300)
@given(parts=st.lists(segments, min_size=1, max_size=6))
def test_the_writer_never_writes_nor_makes_a_folder_outside_dest(sandbox, parts):
    box, dest, _ = sandbox
    relative = "/".join(parts)
    before = _tree(box) - {str(p.relative_to(box)) for p in [dest, *dest.rglob("*")]}
    try:
        target = _Writer(dest).path(relative)
    except ExportError as exc:
        assert "outside DEST" in str(exc)
    except ValueError as exc:  # a NUL byte: no file system takes it
        assert "null" in str(exc)
    except OSError as exc:  # a name too long for the file system: the CLI's one line for OSError
        assert exc.errno == 36
    else:
        assert target.is_relative_to(dest.resolve()) and target.parent.is_dir()
    after = _tree(box) - {str(p.relative_to(box)) for p in [dest, *dest.rglob("*")]}
    assert after == before  # nothing made outside DEST, not even a folder


@settings(max_examples=300)
@given(parts=st.lists(segments, min_size=1, max_size=6))
def test_a_file_named_by_the_manifest_is_read_only_inside_out(sandbox, parts):
    _, _, out = sandbox
    try:
        path = _in_out(out, "/".join(parts))
    except ExportError as exc:
        assert "outside OUT" in str(exc) or "missing" in str(exc)
    except ValueError as exc:
        assert "null" in str(exc)
    except OSError as exc:
        assert exc.errno == 36
    else:
        assert path.is_file() and path.is_relative_to(out.resolve()) and path.read_bytes() == b"face"


def test_the_writer_refuses_each_way_out_and_writes_inside(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "up").symlink_to(tmp_path, target_is_directory=True)
    w = _Writer(dest)
    for relative in ("../x.jpg", "/etc/x.jpg", str(tmp_path / "x.jpg"), "a/../../x.jpg", "up/x.jpg", ".."):
        with pytest.raises(ExportError, match="refusing to write outside DEST"):
            w.path(relative)
    assert w.path("a/b/c.txt") == dest.resolve() / "a" / "b" / "c.txt" and (dest / "a" / "b").is_dir()
    w.text("a/b/c.txt", "é")
    assert (dest / "a" / "b" / "c.txt").read_text(encoding="utf-8") == "é" and w.count == 1


@settings(max_examples=300)
@given(st.text(max_size=120), st.integers(1, 90))
def test_a_safe_name_is_one_plain_entry_of_the_folder_it_is_put_in(text, max_len):
    name = safe_name(text, max_len)
    assert name and len(name) <= max(max_len, len("unnamed") + 1) and name not in (".", "..")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    assert name.split(".")[0].lower() not in {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                                             *(f"lpt{i}" for i in range(10))}
    assert (Path("/out") / name).resolve().parent == Path("/out")


@given(st.dictionaries(st.integers(0, 8), st.text(max_size=30), max_size=9), st.lists(st.integers(-2, 8), max_size=20))
def test_people_folders_are_safe_and_never_two_alike_even_without_case(names, labels):
    folders = people_folders(labels, names)
    assert folders[-1] == "unassigned" and folders[-2] == "not_a_face"
    people = {k: v for k, v in folders.items() if k >= 0}
    assert set(people) == {v for v in labels if v >= 0}
    lowered = [v.lower() for v in people.values()]
    assert len(set(lowered)) == len(lowered) and not {"unassigned", "not_a_face"} & set(lowered)
    for label, folder in people.items():
        assert (Path("/out/people") / folder).resolve().parent == Path("/out/people")
        if label not in names:
            assert folder == f"person_{label:03d}"
        else:
            assert folder.startswith(safe_name(names[label], 60))


def test_clashing_names_get_a_number():
    assert people_folders([0, 1, 2, 3, -1], {0: "Ann", 1: "ann", 2: "ANN", 3: "unassigned"}) == {
        -1: "unassigned", -2: "not_a_face", 0: "Ann", 1: "ann_2", 2: "ANN_3", 3: "unassigned_2"}


# -- a small OUT, made by hand --------------------------------------------------------------------------------
def _out(tmp_path: Path) -> Path:
    """Two frames of a video (200 x 100) and a photo (50 x 50); Ann (named, 2 faces), person_001 (1 face),
    one unassigned face, one not a face."""
    out = tmp_path / "out"
    for d in ("people/Ann", "people/person_001", "people/unassigned", "people/not_a_face", "frames"):
        (out / d).mkdir(parents=True)
    faces = [
        ("v.mp4", 0, 0.0, [10, 20, 50, 60], 0, "people/Ann/face_000000.jpg"),
        ("v.mp4", 0, 0.0, [100, 20, 140, 60], 1, "people/person_001/face_000001.jpg"),
        ("v.mp4", 6, 0.5, [12, 22, 52, 62], 0, "people/Ann/face_000002.jpg"),
        ("v.mp4", 6, 0.5, [150, 0, 200, 100], -1, "people/unassigned/face_000003.jpg"),
        ("p.jpg", None, None, [0, 0, 25, 50], -2, "people/not_a_face/face_000004.jpg"),
    ]
    for *_, crop in faces:
        (out / crop).write_bytes(crop.encode())
    frames = [("v.mp4", 0, 0.0, 200, 100, "frames/v_f000000.jpg"), ("v.mp4", 6, 0.5, 200, 100, "frames/v_f000006.jpg"),
              ("p.jpg", None, None, 50, 50, "frames/p.jpg")]
    for *_, image in frames:
        (out / image).write_bytes(image.encode())
    manifest = {
        "faces": [{"id": k, "source": s, "frame": f, "time_s": t, "bbox": b, "cluster": c, "crop": crop}
                  for k, (s, f, t, b, c, crop) in enumerate(faces)],
        "clusters": [{"id": 0, "size": 2, "folder": "people/Ann", "name": "Ann <3"},
                     {"id": 1, "size": 1, "folder": "people/person_001", "name": None}],
        "frames": [{"source": s, "frame": f, "time_s": t, "width": w, "height": h, "image": image}
                   for s, f, t, w, h, image in frames],
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_folders_hold_each_persons_crops_and_nothing_else(tmp_path):
    out = _out(tmp_path)
    summary = export(out, tmp_path / "set", "folders")
    assert summary == {"format": "folders", "people": 2, "faces": 3, "files": 3}
    assert _tree(tmp_path / "set") == {"Ann", "Ann/face_000000.jpg", "Ann/face_000002.jpg", "person_001",
                                       "person_001/face_000001.jpg"}
    assert (tmp_path / "set" / "Ann" / "face_000002.jpg").read_bytes() == b"people/Ann/face_000002.jpg"


def test_yolo_labels_are_each_faces_box_in_ultralytics_units(tmp_path):
    out = _out(tmp_path)
    dest = tmp_path / "yolo"
    summary = export(out, dest, "yolo")
    assert summary == {"format": "yolo", "people": 2, "faces": 4, "images": 3, "files": 7}
    data = yaml.safe_load((dest / "data.yaml").read_text())
    assert data["names"] == {0: "Ann <3", 1: "person_001", 2: "unassigned"} and Path(data["path"]) == dest.resolve()
    assert data["train"] == data["val"] == "images"
    assert (dest / "data.yaml").read_text().splitlines()[0] == f"# person_cluster export of {json.dumps(str(out))}"
    assert (dest / "labels" / "v_f000000.txt").read_text() == (
        "0 0.150000 0.400000 0.200000 0.400000\n1 0.600000 0.400000 0.200000 0.400000\n")
    assert (dest / "labels" / "v_f000006.txt").read_text() == (
        "0 0.160000 0.420000 0.200000 0.400000\n2 0.875000 0.500000 0.250000 1.000000\n")
    assert (dest / "labels" / "p.txt").read_text() == ""  # its only face is not a face: an empty label file
    assert (dest / "images" / "v_f000006.jpg").read_bytes() == b"frames/v_f000006.jpg"
    assert _tree(dest) == {"data.yaml", "images", "labels", *(f"images/{n}" for n in ("v_f000000.jpg", "v_f000006.jpg",
                           "p.jpg")), *(f"labels/{n}.txt" for n in ("v_f000000", "v_f000006", "p"))}


def test_yolo_has_no_unassigned_class_when_every_face_is_someones(tmp_path):
    out = _out(tmp_path)
    m = json.loads((out / "manifest.json").read_text())
    m["faces"][3]["cluster"] = 1
    (out / "manifest.json").write_text(json.dumps(m))
    export(out, tmp_path / "yolo", "yolo")
    assert yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())["names"] == {0: "Ann <3", 1: "person_001"}
    m["frames"][0]["image"] = None  # output.save_frames: false
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportError) as err:
        export(out, tmp_path / "no_frames", "yolo")
    assert str(err.value) == ("the run kept no frame images (output.save_frames: false); YOLO needs them: run again "
                              "with --set output.save_frames=true --overwrite")
    assert not (tmp_path / "no_frames").exists()


def test_csv_has_one_row_per_face_but_not_a_face(tmp_path):
    out = _out(tmp_path)
    assert export(out, tmp_path / "c", "csv") == {"format": "csv", "people": 2, "faces": 4, "files": 1}
    raw = (tmp_path / "c" / "faces.csv").read_bytes()
    assert b"\r" not in raw and raw.endswith(b"unassigned\n")  # one "\n" a line, as the other text files
    rows = list(csv.reader((tmp_path / "c" / "faces.csv").open()))
    assert rows == [["source", "frame", "time_s", "left", "top", "right", "bottom", "person"],
                    ["v.mp4", "0", "0.0", "10", "20", "50", "60", "Ann <3"],
                    ["v.mp4", "0", "0.0", "100", "20", "140", "60", "person_001"],
                    ["v.mp4", "6", "0.5", "12", "22", "52", "62", "Ann <3"],
                    ["v.mp4", "6", "0.5", "150", "0", "200", "100", "unassigned"]]
    m = json.loads((out / "manifest.json").read_text())
    m["faces"][4]["cluster"] = 1  # the photo's face, someone's now: no frame, no time
    (out / "manifest.json").write_text(json.dumps(m))
    export(out, tmp_path / "c2", "csv")
    assert list(csv.reader((tmp_path / "c2" / "faces.csv").open()))[-1] == ["p.jpg", "", "", "0", "0", "25", "50",
                                                                            "person_001"]


def test_named_only_keeps_the_named_people_and_the_others_count_as_unassigned(tmp_path):
    out = _out(tmp_path)
    assert export(out, tmp_path / "f", "folders", named_only=True)["people"] == 1
    assert _tree(tmp_path / "f") == {"Ann", "Ann/face_000000.jpg", "Ann/face_000002.jpg"}
    export(out, tmp_path / "y", "yolo", named_only=True)
    assert yaml.safe_load((tmp_path / "y" / "data.yaml").read_text())["names"] == {0: "Ann <3", 1: "unassigned"}
    assert (tmp_path / "y" / "labels" / "v_f000000.txt").read_text().split("\n")[1].startswith("1 ")
    assert (tmp_path / "y" / "labels" / "p.txt").read_text() == ""  # not a face stays out
    export(out, tmp_path / "c", "csv", named_only=True)
    assert [r[-1] for r in csv.reader((tmp_path / "c" / "faces.csv").open())][1:] == [
        "Ann <3", "unassigned", "Ann <3", "unassigned"]


def _edited(out: Path, change) -> None:
    m = json.loads((out / "manifest.json").read_text())
    change(m)
    (out / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("fmt, change, message", [
    ("folders", lambda m: m["faces"][0].update(crop="../../outside.jpg"), "outside OUT"),
    ("folders", lambda m: m["faces"][0].update(crop="/etc/hostname"), "outside OUT"),
    ("folders", lambda m: m["faces"][0].update(crop="people/link.jpg"), "outside OUT"),
    ("folders", lambda m: m["faces"][0].update(crop="people/Ann/a\x00b.jpg"), r"unreadable manifest \(embedded null byte\)"),
    ("folders", lambda m: m["faces"][0].update(crop=["a"]), "unreadable manifest"),
    ("folders", lambda m: m["faces"][0].update(crop="people/Ann/" + "x" * 100_000), "missing|unreadable|too long"),
    ("folders", lambda m: m["clusters"][0].update(folder="people/.."), "outside DEST"),
    ("folders", lambda m: m["clusters"][0].update(id="zz"), r"manifest \(invalid literal for int\(\) .*'zz'\)"),
    ("folders", lambda m: m.update(faces=7), "unreadable manifest"),
    ("yolo", lambda m: m["frames"][0].update(image="../outside.jpg"), "outside OUT"),
    ("yolo", lambda m: m["frames"][0].update(image="frames/.."), "missing|outside"),
    ("yolo", lambda m: m["frames"][1].pop("width"), "unreadable manifest \\(no 'width'\\)"),
    ("yolo", lambda m: m["faces"][0].update(bbox=[1, 2]), "unreadable manifest"),
    ("csv", lambda m: m["faces"][0].pop("cluster"), "unreadable manifest"),
])
def test_a_manifest_edited_by_hand_is_one_line_and_leaves_nothing_written(tmp_path, fmt, change, message):
    out = _out(tmp_path)
    (tmp_path / "outside.jpg").write_bytes(b"secret")
    (out / "people" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    _edited(out, change)
    before = _tree(tmp_path)
    for dest in (tmp_path / "new", tmp_path / "empty"):
        if dest.name == "empty":
            dest.mkdir()
            before.add("empty")
        try:
            export(out, dest, fmt)
        except ExportError as exc:
            assert len(str(exc).splitlines()) == 1
            import re

            assert re.search(message, str(exc)), str(exc)
        except OSError as exc:  # a name too long for the file system: the CLI's one line for OSError
            assert "too long" in message and exc.errno == 36
        else:
            pytest.fail("exported from a manifest edited by hand")
        assert _tree(tmp_path) == before  # DEST removed (or emptied, if it was there), nothing else written


def test_dest_that_is_a_file_or_holds_files_is_refused_and_kept(tmp_path):
    out = _out(tmp_path)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        export(out, tmp_path / "file", "csv")
    assert (tmp_path / "file").read_text() == "mine"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / ".hidden").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        export(out, tmp_path / "full", "csv")
    assert _tree(tmp_path / "full") == {".hidden"}
    with pytest.raises(ExportError, match="--format must be one of folders, yolo, csv"):
        export(out, tmp_path / "d", "coco")
    export(out, tmp_path / "deep" / "er", "csv")  # parents are made
    assert (tmp_path / "deep" / "er" / "faces.csv").is_file()


def test_taking_back_an_export_removes_files_folders_and_links_but_nothing_they_lead_to(tmp_path):
    kept = tmp_path / "kept"
    (kept / "inside").mkdir(parents=True)
    (kept / "inside" / "photo.jpg").write_bytes(b"mine")
    dest = tmp_path / "dest"
    (dest / "folder" / "sub").mkdir(parents=True)
    (dest / "file.txt").write_text("x")
    (dest / "folder" / "sub" / "f").write_text("x")
    (dest / "link").symlink_to(kept, target_is_directory=True)
    (dest / "filelink").symlink_to(kept / "inside" / "photo.jpg")
    _Writer(dest).remove_all(created=False)
    assert dest.is_dir() and os.listdir(dest) == []  # DEST was there before: kept, empty
    assert (kept / "inside" / "photo.jpg").read_bytes() == b"mine"
    _Writer(dest).remove_all(created=True)
    assert not dest.exists()


def test_an_export_interrupted_midway_removes_what_it_wrote(tmp_path, monkeypatch):
    out = _out(tmp_path)
    (tmp_path / "empty").mkdir()
    calls = []
    real = _Writer.copy

    def copy_then_fail(self, source, relative):
        calls.append(relative)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(self, source, relative)

    monkeypatch.setattr(_Writer, "copy", copy_then_fail)
    for dest in (tmp_path / "new", tmp_path / "empty"):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            export(out, dest, "folders")
        assert len(calls) == 2
    assert not (tmp_path / "new").exists() and os.listdir(tmp_path / "empty") == []


def test_out_and_dest_reached_through_a_symlink_are_still_inside_themselves(tmp_path):
    """/tmp is a link on macOS, a home folder often is: a path through a link is not a way out."""
    real = tmp_path / "real"
    real.mkdir()
    out = _out(real)
    (tmp_path / "via").symlink_to(real, target_is_directory=True)
    assert export(tmp_path / "via" / "out", tmp_path / "via" / "set", "folders")["faces"] == 3
    assert (real / "set" / "Ann" / "face_000000.jpg").is_file()
    export(tmp_path / "via" / "out", tmp_path / "via" / "yolo", "yolo")
    assert (real / "yolo" / "labels" / "p.txt").exists() and out.is_dir()


def test_an_unreadable_manifest_says_what_is_wrong_in_one_line(tmp_path):
    from person_cluster.export import _unreadable

    out = tmp_path / "o"
    assert str(_unreadable(out, KeyError("faces"))) == \
        f"{out / 'manifest.json'}: unreadable manifest (no 'faces'); was it edited by hand?"
    assert "(ValueError)" in str(_unreadable(out, ValueError()))  # no message: the kind of error
    assert "(first line)" in str(_unreadable(out, TypeError("first line\nsecond")))


def test_named_only_without_a_name_and_on_a_hand_edited_cluster_list_say_so_in_one_line(tmp_path):
    out = _out(tmp_path)
    _edited(out, lambda m: [c.update(name=None) for c in m["clusters"]])
    with pytest.raises(ExportError) as why:
        export(out, tmp_path / "a", "folders", named_only=True)
    assert str(why.value) == "--named-only: no person has a name yet; name them with `person-cluster review`"
    _edited(out, lambda m: m.update(clusters=[7]))
    with pytest.raises(ExportError) as why:
        export(out, tmp_path / "b", "folders", named_only=True)
    assert str(why.value) == (f"{out / 'manifest.json'}: unreadable manifest ('int' object has no attribute 'get'); "
                              "was it edited by hand?")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
