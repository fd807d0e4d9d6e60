"""Names of files and folders written into OUT, made safe for any file system and unable to escape OUT."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_name(text: str, max_len: int = 80) -> str:
    """ASCII letters, digits, '.', '_' and '-' only; never empty, never '.'/'..', never a Windows device name."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", text).strip("._-")[:max_len] or "unnamed"
    if name.lower().split(".")[0] in _RESERVED:
        name = f"_{name}"
    return name


def cluster_folder(cluster_id: int) -> str:
    return {-1: "unassigned", -2: "not_a_face"}.get(cluster_id, f"person_{cluster_id:03d}")


def people_folders(labels, names: dict[int, str]) -> dict[int, str]:
    """Folder of every label in ``labels``: a named cluster's name made safe (see :func:`safe_name`), others
    ``person_000``..., 'unassigned', 'not_a_face'; never two alike (a suffix ``_2``, ``_3`` ... where names clash,
    compared without case, as Windows and macOS do)."""
    taken = {"unassigned", "not_a_face"}
    out: dict[int, str] = {-1: "unassigned", -2: "not_a_face"}
    for label in sorted({int(v) for v in labels if v >= 0}):
        base = safe_name(names[label], 60) if label in names else cluster_folder(label)
        folder, k = base, 1
        while folder.lower() in taken:
            k += 1
            folder = f"{base}_{k}"
        taken.add(folder.lower())
        out[label] = folder
    return out


def frame_stem(source: str, frame: int | None) -> str:
    """A unique, readable file stem for a sampled frame: '<file stem>-<hash of the path>[_f<frame>]'."""
    digest = hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    stem = f"{safe_name(Path(source).stem, 60)}-{digest}"
    return stem if frame is None else f"{stem}_f{frame:06d}"
