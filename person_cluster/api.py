"""The handful of functions most users need.

>>> from person_cluster import api, load_config
>>> manifest = api.run(["talk_show.mp4"], "out", load_config("configs/default.yaml"))
>>> manifest = api.recluster("out", ["clustering.distance_threshold=0.5"])   # from cached features only
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import CACHE_NAME, CacheError, FeatureCache
from .config import EXTRACTION_KEYS, Config, ConfigError
from .engine import make_engine
from .errors import PersonClusterError
from .layout import MANIFEST, REBUILT, SWEEP_DIR
from .pipeline import ExtractionError, ExtractionSummary, Extractor  # noqa: F401 (Extractor: the library's warm one)
from .records import FaceTable
from .review import DECISIONS_NAME
from .sampling import discover_inputs
from .sinks import CacheSink

if TYPE_CHECKING:
    from .clustering import DenseDistances, GraphDistances
    from .constraints import CannotLinks
    from .fusion import Fusion
    from .postprocess import SceneMerge
    from .review import Applied
    from .tracking import Tracks

# Clustering, post-processing and outputs (scikit-learn, scipy: ~2 s to import) are imported where first used, so
# that `run` starts its workers at once; its extractor imports them in the background (CLUSTERING_MODULES).
CLUSTERING_MODULES = ("person_cluster.clustering", "person_cluster.postprocess", "person_cluster.outputs",
                      "person_cluster.outputs.plot", "sklearn.manifold")

log = logging.getLogger(__name__)

# Everything person_cluster writes into OUT; --overwrite removes these and nothing else.
OWNED = (CACHE_NAME, f"{CACHE_NAME}-journal", MANIFEST, "run.json", "frames", SWEEP_DIR, *REBUILT)
# Ours too, but the user's decisions: never removed, not even by --overwrite.
KEPT = (DECISIONS_NAME, f"{DECISIONS_NAME}-wal", f"{DECISIONS_NAME}-shm")


class RunError(PersonClusterError, RuntimeError):
    """The run cannot succeed; the message is one line for the user."""


@dataclass
class ClusteringInput:
    """What clustering reads: tracks, cannot-links, and distances between tracks (cannot-linked pairs set far).
    Depends on the fusion, tracking and constraint settings only, so a sweep reuses it across the others."""

    table: FaceTable  # the faces, with the descriptors clustering uses (fusion.mirror_average)
    tracks: Tracks  # what is clustered: the tracks, cut where the user split one between people
    cannot: CannotLinks  # between faces
    distances: DenseDistances | GraphDistances  # between tracks (faces, for dbscan)
    good: np.ndarray  # (tracks,) bool: the track may form clusters (its best face passes the quality gate)
    scene: np.ndarray  # (faces,) clothing group (fusion.cloth_scope), -1: none, for postprocess's scene merge

    @staticmethod
    def key(config: Config) -> tuple:
        cc = config.clustering
        from .clustering import clusterer_class

        return (config.fusion, config.tracking, config.scenes, config.quality.enabled, config.quality.min_quality,
                cc.cannot_link, clusterer_class(cc.algorithm).honours_constraints, cc.dense_max_faces,
                cc.knn_neighbors)


def face_view(table: FaceTable, config: Config) -> FaceTable:
    """``table`` with the descriptors clustering uses: the mean of each face's and its mirror image's
    (``fusion.mirror_average``, for the faces that have one: ``face.flip``), else its own."""
    if not config.fusion.mirror_average or table.face_flip is None:
        return table
    from .quality import face_descriptors

    return dataclasses.replace(table, face=face_descriptors(table))


@dataclass
class ItemFeatures:
    """What clustering compares items (tracks, or groups of faces) by."""

    fusion: Fusion
    good: np.ndarray  # (items,) bool: the item may form clusters (its best face passes the quality gate)

    def face_scenes(self, items: Tracks) -> np.ndarray:
        """Each face's clothing group, its item's (-1: a photo), for postprocess's scene merge; where clothing is
        always compared (no groups), one group for all."""
        group = self.fusion.group
        return np.zeros(len(items.ids), np.int64) if group is None else group[items.ids]


def item_features(table: FaceTable, items: Tracks, config: Config) -> ItemFeatures:
    """Each item's fused features: its mean face descriptor and clothing feature over its good faces (all of them
    where none is: poor faces would only blur it), its clothing group and time span; and whether it is good."""
    from .fusion import Fusion

    fc = config.fusion
    good_face, good = _face_quality(table, items, config)
    described = good_face | ~good[items.ids]
    face, _ = items.mean(table.face, described)
    cloth, has_cloth = items.mean(table.cloth, table.has_cloth & described)
    group, start, end = _cloth_groups(table, items, config)
    window = fc.cloth_window_sec if fc.cloth_scope == "window" else None
    # Clothing switched off weighs nothing (the threshold is then on the face distance); switched on, it counts
    # even where no face has any (the face stands in for it: fusion.py).
    cloth_weight = fc.cloth_weight if config.cloth.enabled else 0.0
    return ItemFeatures(Fusion(face, cloth, has_cloth, fc.face_weight, cloth_weight, window, group, start, end), good)


def prepare_clustering(table: FaceTable, config: Config, applied: Applied | None = None) -> ClusteringInput:
    """Tracks (must-links) and cannot-links of ``table``, and fused distances between the tracks. An algorithm
    that does not honour constraints (DBSCAN, the seeds' baseline) clusters faces without either. ``applied``: the
    user's decisions: a person's faces join one group (their tracks are must-linked), two people's are
    cannot-linked."""
    from .clustering import clusterer_class, fused_distance_source
    from .constraints import FAR, CannotLinks
    from .tracking import Tracks, link_tracks

    cc = config.clustering
    table = face_view(table, config)
    baseline = not clusterer_class(cc.algorithm).honours_constraints
    tracks = Tracks.singletons(len(table)) if baseline else link_tracks(table, config.tracking)
    cannot = CannotLinks.same_frame(table) if cc.cannot_link and not baseline else CannotLinks.none(len(table))
    if applied is not None and not baseline:
        # A track the user split between people is cut there; a person's faces are joined after clustering
        # (Applied.enforce), so that a named person is compared like anyone else and draws in no one extra.
        tracks = applied.cut(tracks)
        i, j = applied.person_pairs()
        cannot = CannotLinks(np.concatenate([cannot.i, i]), np.concatenate([cannot.j, j]), len(table))
    features = item_features(table, tracks, config)
    distances = fused_distance_source(features.fusion, cc.dense_max_faces, cc.knn_neighbors)
    between = cannot.map(tracks.ids)
    if len(between):
        distances.forbid(between, FAR)
    return ClusteringInput(table, tracks, cannot, distances, features.good, features.face_scenes(tracks))


def _face_quality(table: FaceTable, tracks: Tracks, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Which faces, and which tracks (by their best face), pass the quality gate (all, with it off)."""
    if not config.quality.enabled:
        return np.ones(len(table), bool), np.ones(tracks.count, bool)
    from .detection import detector_class
    from .quality import face_quality

    quality = face_quality(table, detector_class(config.detection.model).quality_scores)
    return quality >= config.quality.min_quality, tracks.best(quality) >= config.quality.min_quality


def _cloth_groups(table: FaceTable, tracks: Tracks, config: Config) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Each track's clothing group (``fusion.cloth_scope``: its scene or its video; -1 for a photo; None: one group
    for all) and its first and last time."""
    video, start, end = tracks.spans(table)
    if config.fusion.cloth_scope == "always":
        return None, start, end
    if config.fusion.cloth_scope == "window":
        return video, start, end
    from .scenes import scene_groups

    scene = scene_groups(table, config.scenes.min_similarity, config.scenes.lookahead)
    group = np.full(tracks.count, -1, np.int64)
    group[tracks.ids] = scene  # a track lies in one shot, so in one scene
    return group, start, end


def scene_merge(table: FaceTable, tracks: np.ndarray, scene: np.ndarray, config: Config,
                cannot: CannotLinks | None = None, videos: set[str] | None = None) -> SceneMerge:
    """What the scene merge compares by: ``scene`` (each face's clothing group), the fusion's weights and the
    clustering's threshold, and the faces in each video's own metric (``postprocess.scene_metric_dims``), learnt
    from ``tracks`` (each face's) and ``cannot`` (the faces of one frame, computed when not given), for the faces
    seen with someone else; ``videos``: only these videos' (an ``add``: those of the clusters it merges)."""
    from .constraints import CannotLinks
    from .metric import video_metric
    from .postprocess import SceneMerge

    dims = config.postprocess.scene_metric_dims
    face = seen = None
    if dims is not None and config.postprocess.scene_merge:
        cannot = CannotLinks.same_frame(table) if cannot is None else cannot
        face = video_metric(table, tracks, cannot, dims, videos)
        seen = np.zeros(len(table), bool)
        seen[cannot.i] = seen[cannot.j] = True
    return SceneMerge(scene, config.fusion.face_weight, config.fusion.cloth_weight,
                      config.clustering.distance_threshold, face, seen)


def cluster_table(table: FaceTable, config: Config, prepared: ClusteringInput | None = None,
                  applied: Applied | None = None) -> np.ndarray:
    """Cluster labels (-1 = unassigned) for every face of ``table``: tracks are clustered, their faces take
    their label, cannot-linked faces end in different clusters. ``prepared`` may be reused between calls with
    the same :meth:`ClusteringInput.key` (as a sweep does). ``applied``: the user's decisions; faces marked as
    not a face get :data:`~person_cluster.review.NOT_A_FACE`, and a person's cluster is never set aside as
    small."""
    from .clustering import clusterer_class, make_clusterer
    from .clustering.gate import QualityGate
    from .postprocess import postprocess
    from .review import NOT_A_FACE

    if prepared is None:
        prepared = prepare_clustering(table, config)
    between = prepared.cannot.map(prepared.tracks.ids)
    cc = config.clustering
    qc = config.quality
    gate = QualityGate(make_clusterer(cc), qc.assign_distance, qc.assign_margin, between)
    labels = gate.fit_predict(prepared.distances, prepared.good)
    log.info("quality gate: %d items (tracks, photos' faces) formed the clusters, %d poor ones joined one by the "
             "margin rule, %d poor ones were clustered among themselves", gate.report.good, gate.report.assigned,
             gate.report.own)
    if len(between):
        labels = between.split(labels, prepared.distances.among)
    labels = labels[prepared.tracks.ids]
    if applied is not None:
        labels = np.where(applied.not_face, -1, applied.enforce(labels))
    table = prepared.table
    # The seeds' baseline (DBSCAN) stays as it was: no tracks, no constraints, no scene merge.
    scenes = (scene_merge(table, prepared.tracks.ids, prepared.scene, config)
              if clusterer_class(cc.algorithm).honours_constraints else None)
    labels = postprocess(labels, table.face, table.cloth, table.has_cloth, config.postprocess,
                         prepared.cannot if len(prepared.cannot) else None,
                         None if applied is None else applied.person >= 0, scenes)
    if applied is not None:
        labels[applied.not_face] = NOT_A_FACE
    return labels


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an OUT that is not ours (a file, or a folder with other files and no run), changing nothing."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: exists and is not a folder")
    entries = [e for e in os.listdir(out) if not e.startswith(".staging-") and e not in KEPT] if out.is_dir() else []
    if overwrite:  # our outputs, the cache included, are about to go: what is left must be nothing
        entries = [e for e in entries if e not in OWNED]
    if entries and (overwrite or not (out / CACHE_NAME).exists()):
        raise RunError(f"{out}: folder is not empty and holds no person_cluster run; choose another OUT")


def prepare_out(out: Path, overwrite: bool) -> None:
    """Create OUT, or check that it is ours; with ``overwrite`` remove our previous outputs (only those). What a
    killed run can leave half-written is removed in any case: staging folders, and the temporary files of frames
    being written (``outputs.write_atomic`` names them ``.<name>.<random>.tmp``)."""
    check_out(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    for p in [*out.glob(".staging-*"), *(out / "frames").glob(".*.tmp")]:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    if overwrite:
        for name in OWNED:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()


def extract(inputs: list[str], out: str | Path, config: Config, overwrite: bool = False,
            progress: bool = True) -> ExtractionSummary:
    """Sample, detect and embed every input into OUT's feature cache (resuming a run with the same settings), on
    the engine ``runtime.engine`` names."""
    out = Path(out)
    check_out(out, overwrite)
    items, skipped = discover_inputs(inputs, config.sampling)
    if not items:  # before OUT is created or any model loaded
        raise RunError(_no_usable_input([(s.source, s.reason) for s in skipped]))
    settings = {**config.extraction_dict(), "inputs": list(inputs)}
    # The engine starts first: a missing model file or an unreachable cluster stops the run before OUT is touched.
    with make_engine(config, progress, CLUSTERING_MODULES) as engine:
        prepare_out(out, overwrite)
        frames_dir = out / "frames" if config.output.save_frames else None
        if frames_dir is not None:
            frames_dir.mkdir(exist_ok=True)
        with FeatureCache(out / CACHE_NAME) as cache:
            # A cache filled with other settings is refused before anything is written; the clothing model's
            # identity is only known once the CNN is loaded, so the sink binds it before its first write.
            try:
                cache.check_settings(settings)
                summary = engine.run(list(enumerate(items)), CacheSink(cache, frames_dir, config.sampling, settings))
            except (CacheError, ExtractionError) as exc:
                raise RunError(str(exc)) from None
            cache.set_meta("config", config.to_dict())
            for k, skip in enumerate(skipped):
                cache.set_input(len(items) + k, skip.source, None, "skipped", skip.reason)
    summary.skipped[:0] = [(s.source, s.reason) for s in skipped]
    summary.inputs = len(items) + len(skipped)
    return summary


def cluster_out(out: str | Path, config: Config | None = None) -> dict[str, Any]:
    """Cluster the cached faces of OUT and (re)write the outputs that changed; returns the manifest. People keep
    the numbers the previous manifest gave them (see :mod:`.outputs.numbering`)."""
    from .outputs import write_outputs
    from .outputs.numbering import stable_numbers
    from .review import apply_decisions, table_keys

    out = Path(out)
    try:
        with FeatureCache.open_existing(out / CACHE_NAME) as cache:
            config = config or Config.from_stored(cache.get_meta("config"))
            table = cache.load_table()
            applied = apply_decisions(out, table)
            prepared = prepare_clustering(table, config, applied)
            labels = cluster_table(table, config, prepared, applied)
            previous = previous_manifest(out)
            numbers, next_person = stable_numbers(labels, table_keys(table), previous_numbers(previous),
                                                  int((previous or {}).get("next_person", 0)))
            return write_outputs(out, cache, table, numbers, config, prepared.tracks.ids, applied, previous,
                                 next_person)
    except CacheError as exc:
        raise RunError(str(exc)) from None


def previous_manifest(out: Path) -> dict[str, Any] | None:
    """OUT's manifest as the last clustering wrote it, or None (none yet, or unreadable: then all is rewritten)."""
    from .layout import ManifestError, read_manifest

    try:
        return read_manifest(out)
    except ManifestError:
        return None


def previous_numbers(manifest: dict[str, Any] | None) -> dict[str, int] | None:
    """Face key -> the person number (>= 0) ``manifest`` gave it."""
    if manifest is None:
        return None
    from .review import face_key

    return {face_key(f["source"], f["frame"], f["bbox"]): int(f["cluster"]) for f in manifest["faces"]
            if isinstance(f.get("cluster"), int) and f["cluster"] >= 0}


def run(inputs: list[str], out: str | Path, config: Config, overwrite: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """The main job: extract features from ``inputs`` and write the people folders into ``out``."""
    summary = extract(inputs, out, config, overwrite=overwrite, progress=progress)
    if summary.inputs - len(summary.skipped) == 0:  # every input found failed to decode
        raise RunError(_no_usable_input(summary.skipped))
    started = time.perf_counter()
    manifest = cluster_out(out, config)
    log.info("seconds: extraction %.2f (main thread: waiting on detection %.2f, CNNs %.2f, storing %.2f), "
             "clustering and outputs %.2f", summary.seconds, summary.wait_s, summary.cnn_s, summary.store_s,
             time.perf_counter() - started)
    return manifest


def _no_usable_input(skipped: list[tuple[str, str]]) -> str:
    return "no usable input: " + "; ".join(f"{s}: {r}" for s, r in skipped[:5])


def recluster(out: str | Path, overrides: list[str] | None = None, config: Config | None = None) -> dict[str, Any]:
    """Re-cluster OUT from its cached features with new fusion, clustering, post-processing and output settings
    (any but :data:`~person_cluster.config.EXTRACTION_KEYS`, which are refused with a one-line reason)."""
    out = Path(out)
    try:
        with FeatureCache.open_existing(out / CACHE_NAME) as cache:
            stored = Config.from_stored(cache.get_meta("config"))
    except CacheError as exc:
        raise RunError(str(exc)) from None
    new = config or stored
    new = new.with_overrides(overrides or [])
    changed = [k for k in EXTRACTION_KEYS if new.get(k) != stored.get(k)]
    if changed:
        raise ConfigError(
            f"config: {', '.join(changed)} changed; extraction stored what these decide (features, crops, frames), "
            "so re-run `person-cluster run ... --overwrite` to apply them"
        )
    return cluster_out(out, new)
