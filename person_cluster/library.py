"""One OUT as a library of people across videos: ``add`` inputs later, ``remove`` them, list and ``name`` people.

An OUT starts with ``run``. ``add`` extracts only the new inputs, with OUT's own extraction settings, into its
cache; the people OUT has keep their faces and numbers, and the new faces are clustered against them
(:mod:`.clustering.incremental`), so a named person is found again in new material under their name, but only
where the new faces are clearly theirs. ``remove`` takes inputs out. ``name`` and ``people`` are the review page's
naming and its list of people, for scripts; all go through the same decisions store as the page.

Every command here leaves OUT whole when interrupted: extraction commits whole frames and a re-run resumes it
(an input whose extraction was cut short is not clustered until then); outputs are written new files first, the
manifest next, removals last (see :mod:`.outputs`); the cache and the decisions change in one transaction each.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .api import RunError, previous_manifest, previous_numbers
from .cache import CACHE_NAME, CacheError, FeatureCache
from .config import EXTRACTION_KEYS, Config, ConfigError
from .engine import make_engine
from .errors import PersonClusterError
from .layout import read_manifest
from .pipeline import ExtractionError
from .review import Decisions, apply_decisions, face_key, table_keys
from .sampling import discover_inputs
from .sinks import CacheSink

log = logging.getLogger(__name__)

# How much nearer the person an added cluster joins must be than anyone else (mean nearest-item distances): a
# wrong name is worse than a missing one.
JOIN_MARGIN = 0.05


class LibraryError(PersonClusterError, ValueError):
    """A library command cannot do what was asked; the message is one line for the user."""


@dataclass
class AddSummary:
    added: list[str] = field(default_factory=list)  # inputs extracted now
    already: list[str] = field(default_factory=list)  # inputs OUT had: not decoded again
    skipped: list[tuple[str, str]] = field(default_factory=list)
    faces: int = 0
    joined: dict[str, int] = field(default_factory=dict)  # folder of a person OUT had -> faces the inputs added
    new_people: int = 0


def _open(out: Path) -> tuple[FeatureCache, Config]:
    try:
        cache = FeatureCache.open_existing(out / CACHE_NAME)
        return cache, Config.from_stored(cache.get_meta("config"))
    except CacheError as exc:
        raise RunError(str(exc)) from None


def _config(stored: Config, overrides: list[str] | None) -> Config:
    """OUT's config with ``overrides`` of the settings that do not decide what extraction stores."""
    config = stored.with_overrides(overrides or [])
    changed = [k for k in EXTRACTION_KEYS if config.get(k) != stored.get(k)]
    if changed:
        raise ConfigError(f"config: {', '.join(changed)}: OUT's inputs were extracted with other values, and an added "
                          "input must be extracted as they were; leave them out (or start another OUT)")
    return config


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _place(source: str) -> str:
    """A path as it names a file from here (no file system access: a library holds 100,000 photos)."""
    return os.path.normcase(os.path.abspath(source))


def add(out: str | Path, inputs: list[str], overrides: list[str] | None = None,
        progress: bool = True) -> tuple[dict[str, Any], AddSummary]:
    """Add ``inputs`` to the library in OUT: extract the new ones and cluster them against OUT's people; returns
    the manifest and what happened."""
    out = Path(out)
    cache, stored = _open(out)
    with cache:
        config = _config(stored, overrides)
        items, skipped = discover_inputs(inputs, config.sampling)
        finished = {_place(i["source"]) for i in cache.inputs() if i["status"] in ("done", "skipped")}
        summary = AddSummary(skipped=[(s.source, s.reason) for s in skipped])
        new = []
        for item in items:
            if _place(item.source) in finished:
                summary.already.append(item.source)
            else:
                new.append(item)
        if summary.already:
            log.warning("already in %s, not decoded again: %s", out, ", ".join(summary.already[:5]) +
                        (f" and {len(summary.already) - 5} more" if len(summary.already) > 5 else ""))
        if not new and not summary.already:
            raise RunError("no usable input: " + "; ".join(f"{s}: {r}" for s, r in summary.skipped[:5]))
        previous = previous_manifest(out)
        if new:
            # The engine (runtime.engine) starts first: a missing model or an unreachable cluster changes nothing.
            with make_engine(config, progress) as engine:
                cache.add_inputs(list(inputs))
                frames_dir = out / "frames" if config.output.save_frames else None
                if frames_dir is not None:
                    frames_dir.mkdir(exist_ok=True)
                settings = {**config.extraction_dict(), "inputs": cache.get_meta("extraction")["extraction"]["inputs"]}
                start = cache.next_position()
                try:
                    cache.check_settings(settings)
                    result = engine.run([(start + k, item) for k, item in enumerate(new)],
                                        CacheSink(cache, frames_dir, config.sampling, settings))
                except (CacheError, ExtractionError) as exc:
                    raise RunError(str(exc)) from None
            summary.skipped += result.skipped
            summary.added = [i.source for i in new if i.source not in {s for s, _ in result.skipped}]
        for k, skip in enumerate(skipped):
            cache.set_input(cache.next_position() + k, skip.source, None, "skipped", skip.reason)
        cache.set_meta("config", config.to_dict())
        manifest = _recluster(out, cache, config, previous, {i.source for i in new}, summary)
    return manifest, summary


def _recluster(out: Path, cache: FeatureCache, config: Config, previous: dict[str, Any] | None,
               added_sources: set[str], summary: AddSummary | None = None) -> dict[str, Any]:
    """Labels for OUT after an add (``added_sources``), a remove or a decision, without clustering everything
    again: the faces OUT had keep their person; the added ones are clustered against them. Then the outputs."""
    from .api import cluster_out
    from .clustering.incremental import cluster_added
    from .outputs import write_outputs
    from .tracking import link_tracks

    if previous is None:  # no earlier clustering to keep: cluster everything
        return cluster_out(out, config)
    table = cache.load_table()
    applied = apply_decisions(out, table)
    before = previous_numbers(previous) or {}
    keys = table_keys(table)
    added = np.array([s in added_sources for s in table.sources], bool)
    fixed = np.array([before.get(k, -1) for k in keys], np.int64)
    if applied is not None:
        fixed = np.where(applied.not_face, -2, applied.enforce(np.where(added, -1, fixed)))
    next_person = int(previous.get("next_person", int(fixed.max(initial=-1)) + 1))
    if added.any():
        labels, tracks, next_person, report = cluster_added(table, config, fixed, added, next_person, JOIN_MARGIN,
                                                            _names(out, previous))
        if applied is not None:
            labels = np.where(applied.not_face, -2, applied.enforce(labels))
        if summary is not None:
            summary.faces = int(added.sum())
            summary.new_people = report.new_people
            summary.joined = {str(k): v for k, v in report.joined.items()}
    else:
        labels, tracks = fixed, link_tracks(table, config.tracking)
    from .outputs import PLOT_MAX_POINTS

    # A large library's map is not redrawn for every change: t-SNE of its sample costs more than the rest.
    manifest = write_outputs(out, cache, table, labels, config, tracks.ids, applied, previous, next_person,
                             replot=len(table) <= PLOT_MAX_POINTS)
    if summary is not None:
        folder = {c["id"]: Path(c["folder"]).name for c in manifest["clusters"]}
        summary.joined = {folder.get(int(k), k): v for k, v in summary.joined.items()}
    return manifest


def remove(out: str | Path, sources: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Take ``sources`` (videos or photos, or folders: every input under one) out of OUT: their faces, crops, frames
    and labels; every decision about other faces stays. Returns the manifest and the inputs removed."""
    out = Path(out)
    cache, config = _open(out)
    with cache:
        known = [i["source"] for i in cache.inputs()]
        chosen: list[str] = []
        for given in sources:
            inside = os.path.realpath(given).rstrip(os.sep) + os.sep
            found = [s for s in known if _same_file(s, given) or os.path.realpath(s).startswith(inside)]
            if not found:
                raise LibraryError(f"{given}: not an input of {out} (see `person-cluster people {out}` or its "
                                   "manifest's inputs)")
            chosen += [s for s in found if s not in chosen]
        previous = previous_manifest(out)
        cache.remove_sources(chosen, list(sources))
        manifest = _recluster(out, cache, config, previous, set())
    frames = out / "frames"
    if frames.is_dir():
        from .outputs.naming import frame_stem

        stems = {frame_stem(s, None) for s in chosen}
        for f in frames.iterdir():
            if f.name.rsplit("_f", 1)[0] in stems or f.stem in stems:
                f.unlink()
    return manifest, chosen


def people(out: str | Path) -> list[dict[str, Any]]:
    """OUT's people, as the cast ranks them: folder, name (with the decisions taken since the last clustering),
    faces, screen time, videos, and where they are first seen."""
    out = Path(out)
    manifest = read_manifest(out)
    names = _names(out, manifest)
    videos: dict[int, set[str]] = {}
    for f in manifest["faces"]:
        if f["cluster"] >= 0 and f["frame"] is not None:
            videos.setdefault(f["cluster"], set()).add(f["source"])
    clusters = {c["id"]: c for c in manifest["clusters"]}
    rows = []
    for member in manifest.get("cast", []):
        c = clusters.get(member["cluster"], {})
        rows.append({"person": f"person_{member['cluster']:03d}", "folder": Path(c.get("folder", "")).name,
                     "name": names.get(member["cluster"]), "faces": member["faces"],
                     "screen_time_s": member["screen_time_s"], "videos": sorted(videos.get(member["cluster"], ())),
                     "first_source": member["first_source"], "first_time_s": member["first_time_s"]})
    return rows


def _names(out: Path, manifest: dict[str, Any]) -> dict[int, str]:
    """Cluster id -> its name: the decisions' person who owns most of its faces, else the manifest's name."""
    names = {c["id"]: c["name"] for c in manifest["clusters"] if c.get("name")}
    with Decisions(out) as d:
        people, assigned = d.people(), d.assigned()
    owners: dict[int, list[int]] = {}
    for f in manifest["faces"]:
        p = assigned.get(face_key(f["source"], f["frame"], f["bbox"]))
        if p is not None and f["cluster"] >= 0:
            owners.setdefault(f["cluster"], []).append(p)
    for cluster, ps in owners.items():
        person = people.get(max(set(ps), key=ps.count))
        if person is not None and person.name:
            names[cluster] = person.name
    return names


def resolve(out: Path, manifest: dict[str, Any], person: str) -> int:
    """The cluster id ``person`` names: a number's folder (``person_007``, even after the person was named) or
    a current name."""
    ids = {c["id"] for c in manifest["clusters"]}
    if person.startswith("person_") and person[7:].isdigit() and int(person[7:]) in ids:
        return int(person[7:])
    by_folder = [c["id"] for c in manifest["clusters"] if Path(c["folder"]).name == person]
    by_name = [k for k, v in _names(out, manifest).items() if v == person]
    found = sorted(set(by_folder) | set(by_name))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise LibraryError(f"{person!r} names {len(found)} people ({', '.join(f'person_{k:03d}' for k in found)}); "
                           "use the number")
    raise LibraryError(f"no person {person!r} in {out} (`person-cluster people {out}` lists them)")


def name(out: str | Path, person: str, new_name: str) -> dict[str, Any]:
    """Name ``person`` (see :func:`resolve`) ``new_name`` through the decisions store, and rename their outputs at
    once (only that person's folder and montage are written). Returns their row of :func:`people`."""
    out = Path(out)
    manifest = read_manifest(out)
    cluster = resolve(out, manifest, person)
    faces = [face_key(f["source"], f["frame"], f["bbox"]) for f in manifest["faces"] if f["cluster"] == cluster]
    with Decisions(out) as d:
        d.name(faces, new_name)
    cache, config = _open(out)
    with cache:
        _recluster(out, cache, config, manifest, set())
    return next(row for row in people(out) if row["person"] == f"person_{cluster:03d}")
