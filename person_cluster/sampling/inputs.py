"""Turn the paths a user names into a list of inputs (videos and photos), folders searched recursively."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..config import SamplingConfig
from ..errors import PersonClusterError
from ..records import InputItem, SkippedInput

log = logging.getLogger(__name__)


class InputError(PersonClusterError):
    """An input cannot be used; the message is one line naming the reason (the caller adds the path)."""


def classify(path: Path, config: SamplingConfig) -> str | None:
    ext = path.suffix.lower()
    if ext in config.image_extensions:
        return "image"
    if ext in config.video_extensions:
        return "video"
    return None


def discover_inputs(paths: list[str], config: SamplingConfig) -> tuple[list[InputItem], list[SkippedInput]]:
    """Expand files and folders into inputs, in a deterministic order; unusable paths become skips.

    ``source`` keeps the path as given (a folder's files are joined onto the folder as given), so the manifest
    refers to inputs the way the user does.
    """
    items: list[InputItem] = []
    skipped: list[SkippedInput] = []
    seen: set[str] = set()

    def add(source: str) -> None:
        real = os.path.realpath(source)
        if real in seen:
            return
        seen.add(real)
        kind = classify(Path(source), config)
        if kind is None:
            skipped.append(SkippedInput(source, f"unsupported file type '{Path(source).suffix or '(none)'}'"))
        elif not os.access(source, os.R_OK):
            skipped.append(SkippedInput(source, "permission denied"))
        elif os.path.getsize(source) == 0:
            skipped.append(SkippedInput(source, "file is empty"))
        else:
            items.append(InputItem(source=source, kind=kind))

    for given in paths:
        path = Path(given)
        if not os.path.lexists(given):
            skipped.append(SkippedInput(given, "no such file or folder"))
        elif path.is_dir():
            found = sorted(_walk(given))
            if not found:
                skipped.append(SkippedInput(given, "folder holds no files"))
            for source in found:
                add(source)
        elif path.is_file():
            add(given)
        else:
            skipped.append(SkippedInput(given, "not a regular file or folder"))
    for skip in skipped:
        log.warning("skipping %s: %s", skip.source, skip.reason)
    return items, skipped


def _walk(folder: str) -> list[str]:
    """All non-hidden files below ``folder`` (symlinked folders are not followed, to avoid cycles)."""
    out = []
    for root, dirs, files in os.walk(folder, onerror=lambda e: log.warning("cannot list %s: %s", e.filename, e.strerror)):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(os.path.join(root, f) for f in files if not f.startswith("."))
    return out
