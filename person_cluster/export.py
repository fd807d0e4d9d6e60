"""``person-cluster export OUT DEST``: a run's people as a training set, in a layout other tools read.

- ``folders``: one folder per person with their face crops: the ImageFolder layout of torchvision and Keras.
- ``yolo``: ``images/`` (the sampled frames), ``labels/`` (one ``class cx cy w h`` line per face) and ``data.yaml``
  with the class names, as Ultralytics reads them. Unassigned faces keep a class of their own ("unassigned"), so a
  detector trained on the set is not taught that they are background.
- ``csv``: one row per face: source, frame, time, box, person.

``--named-only`` keeps the people the user named (``person-cluster review``); the others count as unassigned.

Everything is read from OUT's manifest and files. DEST must be new or empty; every path written is checked to lie
inside it, and a failed export removes what it wrote, so DEST is never left half-written.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

from .errors import PersonClusterError
from .layout import MANIFEST, read_manifest
from .review import NOT_A_FACE

FORMATS = ("folders", "yolo", "csv")
# What a manifest edited by hand raises where a field has the wrong type or is missing (a NUL in a path: ValueError).
_MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError)


class ExportError(PersonClusterError, ValueError):
    """The export cannot be made; the message is one line for the user."""


def export(out: str | Path, dest: str | Path, fmt: str, named_only: bool = False) -> dict[str, Any]:
    """Export OUT's people into DEST in ``fmt``; returns a summary (format, people, faces, files). ``named_only``:
    only the people the user named (in YOLO, the others' faces keep the 'unassigned' class)."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}")
    out, dest = Path(out), Path(dest)
    manifest = read_manifest(out)
    try:
        if named_only:
            manifest = _named_only(manifest)
    except ExportError:
        raise
    except _MALFORMED as exc:
        raise _unreadable(out, exc) from None
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ExportError(f"{dest}: exists and is not an empty folder; export into a new or empty one")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    writer = _Writer(dest)
    try:
        summary = {"folders": _folders, "yolo": _yolo, "csv": _csv}[fmt](out, manifest, writer)
    except BaseException as exc:
        writer.remove_all(created)
        if isinstance(exc, _MALFORMED) and not isinstance(exc, PersonClusterError):
            raise _unreadable(out, exc) from None
        raise
    return {"format": fmt, **summary, "files": writer.count}


def _named_only(manifest: dict[str, Any]) -> dict[str, Any]:
    named = [c for c in manifest["clusters"] if c.get("name")]
    if not named:
        raise ExportError("--named-only: no person has a name yet; name them with `person-cluster review`")
    # The faces keep their clusters: every writer takes a face whose cluster is not among the people it writes
    # as unassigned (tests/test_export_paths.py checks it for each format).
    return {**manifest, "clusters": named}


def _unreadable(out: Path, exc: Exception) -> ExportError:
    reason = f"no {exc}" if isinstance(exc, KeyError) else (str(exc).splitlines() or [type(exc).__name__])[0]
    return ExportError(f"{out / MANIFEST}: unreadable manifest ({reason}); was it edited by hand?")


class _Writer:
    """Writes only inside ``root``; remembers what it wrote, to take it back."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.count = 0

    def path(self, relative: str) -> Path:
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root):
            raise ExportError(f"refusing to write outside DEST: {relative}")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def copy(self, source: Path, relative: str) -> None:
        shutil.copyfile(source, self.path(relative))
        self.count += 1

    def text(self, relative: str, text: str) -> None:
        self.path(relative).write_text(text, encoding="utf-8")
        self.count += 1

    def remove_all(self, created: bool) -> None:
        for entry in list(self.root.iterdir()):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        if created:
            self.root.rmdir()


def _person_names(manifest: dict[str, Any], display: bool = False) -> dict[int, str]:
    """Cluster id -> its folder name (the person's name made safe for any file system, or person_000 ...), or
    with ``display`` the name as the user gave it where there is one."""
    return {int(c["id"]): (display and c.get("name")) or Path(c["folder"]).name for c in manifest["clusters"]}


def _faces(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every face but those the user marked as not a face (cluster -2)."""
    return [f for f in manifest["faces"] if f["cluster"] != NOT_A_FACE]


def _in_out(out: Path, relative: str) -> Path:
    """A file named by the manifest, which must lie inside OUT."""
    path = (out / relative).resolve()
    if not path.is_relative_to(out.resolve()):
        raise ExportError(f"{out}: the manifest names {relative}, which is outside OUT; refusing to read it")
    if not path.is_file():
        raise ExportError(f"{out}: the manifest names {relative}, which is missing; run `person-cluster cluster` again")
    return path


def _folders(out: Path, manifest: dict[str, Any], writer: _Writer) -> dict[str, int]:
    names = _person_names(manifest)  # folder names: safe on any file system
    faces = [f for f in manifest["faces"] if f["cluster"] in names]
    for f in faces:
        writer.copy(_in_out(out, f["crop"]), f"{names[f['cluster']]}/{Path(f['crop']).name}")
    return {"people": len({f["cluster"] for f in faces}), "faces": len(faces)}


def _yolo(out: Path, manifest: dict[str, Any], writer: _Writer) -> dict[str, int]:
    if any(fr.get("image") is None for fr in manifest["frames"]):
        raise ExportError("the run kept no frame images (output.save_frames: false); YOLO needs them: run again "
                          "with --set output.save_frames=true --overwrite")
    names = _person_names(manifest, display=True)
    faces = _faces(manifest)
    classes = [names[c] for c in sorted(names)]
    if any(f["cluster"] < 0 for f in faces):
        classes.append("unassigned")
    class_of = {c: k for k, c in enumerate(sorted(names))}
    unassigned = len(names)
    by_frame: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for f in faces:
        by_frame.setdefault((f["source"], f["frame"]), []).append(f)
    for fr in manifest["frames"]:
        stem = Path(fr["image"]).stem
        writer.copy(_in_out(out, fr["image"]), f"images/{stem}{Path(fr['image']).suffix}")
        lines = []
        for f in by_frame.get((fr["source"], fr["frame"]), []):
            left, top, right, bottom = f["bbox"]
            w, h = fr["width"], fr["height"]
            lines.append(f"{class_of.get(f['cluster'], unassigned)} {(left + right) / 2 / w:.6f} "
                         f"{(top + bottom) / 2 / h:.6f} {(right - left) / w:.6f} {(bottom - top) / h:.6f}\n")
        writer.text(f"labels/{stem}.txt", "".join(lines))
    names_yaml = "".join(f"  {k}: {json.dumps(name)}\n" for k, name in enumerate(classes))
    writer.text("data.yaml", f"# person_cluster export of {json.dumps(str(out))}\npath: {json.dumps(str(writer.root))}\n"
                             f"train: images\nval: images\nnames:\n{names_yaml}")
    return {"people": len(names), "faces": len(faces), "images": len(manifest["frames"])}


def _csv(out: Path, manifest: dict[str, Any], writer: _Writer) -> dict[str, int]:
    names = _person_names(manifest, display=True)
    faces = _faces(manifest)
    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\n")
    rows.writerow(["source", "frame", "time_s", "left", "top", "right", "bottom", "person"])
    for f in faces:
        rows.writerow([f["source"], "" if f["frame"] is None else f["frame"], "" if f["time_s"] is None else f["time_s"],
                       *f["bbox"], names.get(f["cluster"], "unassigned")])
    writer.text("faces.csv", text.getvalue())
    return {"people": len(names), "faces": len(faces)}
