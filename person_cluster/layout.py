"""Names of the folders and files a run writes into OUT (besides the feature cache, ``cache.CACHE_NAME``), and the
one reader of its manifest.

Kept apart from the modules that write them so that ``api`` can name them without importing those modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import PersonClusterError

# What each clustering writes about its people, faces, frames and tracks (its schema: outputs.write_outputs).
MANIFEST = "manifest.json"
# Rebuilt from the cache by every clustering: removed and written again each time.
REBUILT = ("people", "montages", "annotations", "clusters.png", "cast.csv", "timelines")
# Results of parameter sweeps against ground truth.
SWEEP_DIR = "sweeps"


class ManifestError(PersonClusterError, ValueError):
    """OUT has no manifest, or one that cannot be read; the message says which, in one line."""


def read_manifest(out: str | Path) -> dict[str, Any]:
    """OUT's manifest, checked to be a mapping with its ``faces``, ``clusters`` and ``frames``: the one reader for
    every command that works from a finished run (evaluate, export, review)."""
    path = Path(out) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest; run `person-cluster run ... -o {out}` first") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable manifest ({exc})") from None
    missing = [k for k in ("faces", "clusters", "frames") if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise ManifestError(f"{path}: unreadable manifest (no {', '.join(missing)})")
    return manifest
