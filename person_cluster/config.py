"""One configuration object for the whole pipeline, loaded from YAML.

Every tunable lives here, grouped by pipeline stage. Unknown keys and out-of-range values are rejected when the
config is built, so a typo in a YAML file or a ``--set`` override fails before any video is decoded.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .errors import PersonClusterError


class ConfigError(PersonClusterError, ValueError):
    """A config file or override is invalid; the message says which key and why."""


# Field metadata of a setting used while extracting (its effect is stored in the feature cache), in a section whose
# other settings are not; a section with ``EXTRACTED = True`` is so as a whole. EXTRACTION_KEYS is derived from these.
EXTRACTED = {"extracted": True}


def _require(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"config: {key}: {msg}")


@dataclass
class SamplingConfig:
    EXTRACTED: ClassVar[bool] = True  # every key decides the extracted features (see EXTRACTION_KEYS)

    mode: str = "interval"  # "interval": one frame every capture_interval_sec; "scene": per detected shot
    capture_interval_sec: float = 1.0
    frames_per_scene: int = 1  # scene mode: 1 (middle of the shot) or 2 (at 1/3 and 2/3)
    # Shots of every video, found while decoding (PySceneDetect's ContentDetector): face tracks never cross a cut.
    shots: bool = True
    scene_threshold: float = 27.0  # PySceneDetect ContentDetector threshold (shots, and scene mode)
    min_scene_len_sec: float = 0.5
    skip_sec: float = 0.0  # ignore the start of every video
    stop_sec: float | None = None  # ignore everything after this time
    image_extensions: list[str] = field(
        default_factory=lambda: [".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"]
    )
    video_extensions: list[str] = field(
        default_factory=lambda: [".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"]
    )

    def validate(self) -> None:
        _require(self.mode in ("interval", "scene"), "sampling.mode", "must be 'interval' or 'scene'")
        _require(self.capture_interval_sec > 0, "sampling.capture_interval_sec", "must be > 0")
        _require(self.frames_per_scene in (1, 2), "sampling.frames_per_scene", "must be 1 or 2")
        _require(self.scene_threshold > 0, "sampling.scene_threshold", "must be > 0")
        _require(self.min_scene_len_sec >= 0, "sampling.min_scene_len_sec", "must be >= 0")
        _require(self.skip_sec >= 0, "sampling.skip_sec", "must be >= 0")
        _require(
            self.stop_sec is None or self.stop_sec > self.skip_sec,
            "sampling.stop_sec",
            "must be null or greater than skip_sec",
        )


@dataclass
class DetectionConfig:
    EXTRACTED: ClassVar[bool] = True  # every key decides the extracted features (see EXTRACTION_KEYS)

    model: str = "centerface"  # a name in person_cluster.detection.DETECTORS: centerface | hog | cnn
    max_side: int | None = None  # detect on frames downscaled to this longer side; null: the model's default
    min_face_size: int = 20  # shorter side of the box's part inside the frame, original pixels; smaller: dropped
    score_threshold: float | None = None  # null: the model's default (centerface 0.5; hog/cnn dlib's 0.0)
    upsample: int = 1  # hog/cnn: dlib upsampling passes: 1 finds faces down to ~40 px, 0 only from ~80 px
    upsample_with: str = "opencv"  # hog: "opencv" doubles the frame with OpenCV (faster), "dlib" with pyramid_up
    grayscale: bool = False  # hog: scan the luma image (a third faster; its recall: docs/speed.md)
    # A photo in which no face is found is looked at again inside a border of this share of its longer side on
    # every side (its edge pixels repeated): a face that fills a photo (a crop of a face) has no context around it,
    # and the detector misses it (docs/quality.md). 0: never. Video frames never are.
    photo_border: float = 0.5

    def validate(self) -> None:
        from .detection import DETECTORS

        _require(self.model in DETECTORS, "detection.model", f"must be one of {', '.join(DETECTORS)}")
        _require(self.upsample_with in ("opencv", "dlib"), "detection.upsample_with", "must be 'opencv' or 'dlib'")
        _require(0 <= self.upsample <= 3, "detection.upsample", "must be 0..3")
        _require(self.max_side is None or self.max_side >= 64, "detection.max_side", "must be null or >= 64")
        _require(self.min_face_size >= 1, "detection.min_face_size", "must be >= 1")
        _require(0 <= self.photo_border <= 2, "detection.photo_border", "must be 0..2")


@dataclass
class FaceConfig:
    # "onnx": dlib's descriptor network run by onnxruntime on batches (same weights and results, ~40x faster);
    # "dlib": dlib evaluates it one face at a time (the reference; the only one that supports num_jitters > 0).
    # Not an extraction setting: both give the same descriptors (to 5e-7).
    backend: str = "onnx"
    batch_size: int = 32  # chips per onnxruntime call
    num_jitters: int = field(default=0, metadata=EXTRACTED)  # dlib re-samples the chip this many times; 0 is fastest
    padding: float = field(default=0.25, metadata=EXTRACTED)  # dlib chip padding around the aligned face
    # Which points align the chip: "both" dlib's 5-point landmark model and the detector's five points together,
    # "detector" the detector's alone, "dlib" dlib's alone (as before). Faces whose detector gives no points (hog,
    # cnn) are aligned as with "dlib". embedding/face.py says why and what was measured.
    align: str = field(default="both", metadata=EXTRACTED)
    # Which faces also get their mirrored chip described (a second descriptor pass), for fusion.mirror_average and
    # the quality gate's mirror-distance cue (see quality.py): "photos" (a photo is one view of a face, where a
    # video's track has many: a photo folder's turned faces; friends_kitchen's crops' BCubed F 0.893 -> 0.928 over
    # thresholds and orders of the photos),
    # "all" (video faces too: better at 0.2 s, worse at 0.5 s on the living room; docs/quality.md), "none".
    flip: str = field(default="photos", metadata=EXTRACTED)

    def mirrors(self, photo: bool) -> bool:
        """Whether a face of a photo (``photo``) or of a video frame gets its mirrored chip described."""
        return self.flip == "all" or (self.flip == "photos" and photo)

    def validate(self) -> None:
        _require(self.backend != "torch", "face.backend", "'torch' is now 'onnx' (the same network, run by onnxruntime)")
        _require(self.backend in ("onnx", "dlib"), "face.backend", "must be 'onnx' or 'dlib'")
        _require(self.batch_size >= 1, "face.batch_size", "must be >= 1")
        _require(0 <= self.num_jitters <= 100, "face.num_jitters", "must be 0..100")
        _require(self.num_jitters == 0 or self.backend == "dlib", "face.num_jitters",
                 "jittering is done by dlib: set face.backend: dlib to use num_jitters > 0")
        _require(0 <= self.padding <= 1, "face.padding", "must be 0..1")
        _require(self.align in ("both", "detector", "dlib"), "face.align", "must be 'both', 'detector' or 'dlib'")
        _require(self.flip in ("none", "photos", "all"), "face.flip", "must be 'none', 'photos' or 'all'")


@dataclass
class ClothConfig:
    EXTRACTED: ClassVar[bool] = True  # every key decides the extracted features (see EXTRACTION_KEYS)

    enabled: bool = True
    backbone: str = "mobilenet_v2"  # any torchvision classification model name
    stage: str = "features.3"  # graph node to cut at: an early one (resnet18: "layer2" gives 128-d)
    colour: bool = True  # add the crop's HSV histograms to the CNN's features (embedding/clothing.py says why)
    weights_file: str | None = None  # explicit .pth; else looked up where torchvision keeps checkpoints
    input_size: int = 224
    batch_size: int = 32
    # Region under the face, in face-box units: centred horizontally, `width` face widths wide, starting
    # `top` face heights below the face's bottom edge and `height` face heights tall. Clipped to the frame.
    width: float = 2.0
    top: float = 0.5
    height: float = 2.0
    min_visible: float = 0.5  # at least this share of the region must lie inside the frame
    min_pixels: int = 16  # and both clipped sides at least this many pixels, else: no clothing feature

    def validate(self) -> None:
        _require(bool(self.backbone), "cloth.backbone", "must be a torchvision model name")
        _require(bool(self.stage), "cloth.stage", "must name a graph node, e.g. layer2")
        _require(32 <= self.input_size <= 1024, "cloth.input_size", "must be 32..1024")
        _require(self.batch_size >= 1, "cloth.batch_size", "must be >= 1")
        _require(self.width > 0 and self.height > 0, "cloth.width/height", "must be > 0")
        _require(0 < self.min_visible <= 1, "cloth.min_visible", "must be in (0, 1]")
        _require(self.min_pixels >= 1, "cloth.min_pixels", "must be >= 1")


@dataclass
class FusionConfig:
    face_weight: float = 1.0
    cloth_weight: float = 0.5
    # Where clothing is compared (people change clothes between scenes): "scene" between tracks of one scene of a
    # video (see the scenes section); "window" between tracks of one video at most cloth_window_sec apart; "always"
    # between any two. Photos are always compared with each other.
    cloth_scope: str = "scene"
    cloth_window_sec: float = 10.0
    # The mean of a face's and its mirror image's descriptors instead of the face's own, for every face that has
    # its mirror image described (face.flip: photos, by default). Same/other-person pairs separate better (ROC AUC
    # 0.974 -> 0.983 on friends_kitchen); false: every face by its own descriptor (the mirror distance stays a cue).
    mirror_average: bool = True

    def validate(self) -> None:
        _require(self.face_weight > 0, "fusion.face_weight", "must be > 0")
        _require(self.cloth_weight >= 0, "fusion.cloth_weight", "must be >= 0")
        _require(self.cloth_scope in ("scene", "window", "always"), "fusion.cloth_scope",
                 "must be scene, window or always")
        _require(self.cloth_window_sec >= 0, "fusion.cloth_window_sec", "must be >= 0")


@dataclass
class ScenesConfig:
    """Scenes (see person_cluster.scenes): runs of shots of one place, within which clothing is compared."""

    # Two shots at most `lookahead` shots apart whose backgrounds (colour histograms outside the people) have at
    # least this histogram intersection are one scene, and so is every shot between them.
    min_similarity: float = 0.35
    lookahead: int = 3

    def validate(self) -> None:
        _require(0 < self.min_similarity <= 1, "scenes.min_similarity", "must be in (0, 1]")
        _require(self.lookahead >= 1, "scenes.lookahead", "must be >= 1")


@dataclass
class TrackingConfig:
    """Face tracks (see person_cluster.tracking): faces linked across the sampled frames of one shot."""

    enabled: bool = True
    max_gap_sec: float = 1.5  # a track stays open this long after its last face (a missed detection, a turn)
    max_face_distance: float = 0.5  # L2-normalised descriptor distance to the track's last face
    max_shift: float = 1.0  # centre movement since the track's last face, in face-box sizes
    # A track is a must-link, so a wrong one costs more than a broken one. Where a face could continue two tracks,
    # or a track two faces, whose descriptor distances differ by less than this (people crossing, one face hiding
    # another), the track ends rather than guess. 0: always take the Hungarian method's choice.
    ambiguity_margin: float = 0.1
    # A track whose two parts' mean descriptors are further apart than this is two tracks (an identity switch the
    # gates let through); it is split where the parts differ most, again for each part. null: never split.
    split_distance: float | None = 0.4
    # A track is also split where one part is nearer a person seen beside the other part than that other part is
    # (tracking.split_at_rivals): the switch after a gap, when one person walked off and another took the place.
    rival_split: bool = True

    def validate(self) -> None:
        _require(self.max_gap_sec >= 0, "tracking.max_gap_sec", "must be >= 0")
        _require(0 < self.max_face_distance <= 2, "tracking.max_face_distance", "must be in (0, 2]")
        _require(self.max_shift >= 0, "tracking.max_shift", "must be >= 0")
        _require(self.ambiguity_margin >= 0, "tracking.ambiguity_margin", "must be >= 0")
        _require(self.split_distance is None or self.split_distance > 0, "tracking.split_distance",
                 "must be null or > 0")


@dataclass
class QualityConfig:
    """The quality gate (see person_cluster.quality and person_cluster.clustering.gate). On by default since
    2026-12-03: on features without mirror images (a video's, so its cues are size, sharpness and detector score) it
    raised the living room's BCubed F, averaged over the thresholds 0.33-0.39, from 0.896 to 0.932 and the
    friends_kitchen face crops' from 0.866 to 0.930, left friends_kitchen, the whole crop folder and LFW as they were
    (docs/quality.md#the-quality-gate-by-default); with the photos' mirror images (face.flip) it adds their mirror
    distance."""

    enabled: bool = True
    # An item (a track, or a photo's face) whose best face's quality is below this takes no part in forming
    # clusters; a track is described by the mean of its faces at or above it (all of them, if none is).
    min_quality: float = 0.5
    # A poor item joins the cluster whose nearest good item is closer than assign_distance, when every other
    # cluster's nearest good item is at least assign_margin further; the others are clustered among themselves.
    assign_distance: float = 0.5
    assign_margin: float = 0.05

    def validate(self) -> None:
        _require(0 <= self.min_quality <= 1, "quality.min_quality", "must be in [0, 1]")
        _require(self.assign_distance > 0, "quality.assign_distance", "must be > 0")
        _require(self.assign_margin >= 0, "quality.assign_margin", "must be >= 0")


@dataclass
class ClusteringConfig:
    algorithm: str = "chinese_whispers"  # a name in person_cluster.clustering.CLUSTERERS: chinese_whispers | hac |
    #                                      rank_order | finch | dbscan (the seeds' baseline: no tracks, no cannot-links)
    linkage: str = "average"  # HAC linkage: average, complete, single
    # Chinese whispers: pairs closer than this are edges; HAC: absolute cut; FINCH: first-neighbour links kept below
    # it. Fused, L2-normalised units.
    distance_threshold: float = 0.36
    eps: float = 0.5  # DBSCAN
    min_samples: int = 5  # DBSCAN
    rank_neighbors: int = 20  # rank-order: length of each face's neighbour list (Zhu et al.'s K)
    rank_threshold: float = 14.0  # rank-order: merge when the rank-order distance is below this ...
    rank_normalized_threshold: float = 1.0  # ... and the normalised (local density) distance below this
    # Above this many faces, distances come from a k-nearest-neighbour graph (faiss IVF) instead of all pairs:
    # memory O(n k) instead of O(n^2).
    dense_max_faces: int = 20000
    knn_neighbors: int = 32
    # Two faces of one frame or photo are two people (not for dbscan). Off for collages, mirrors, screens.
    cannot_link: bool = True

    def validate(self) -> None:
        from .clustering import CLUSTERERS

        _require(
            self.algorithm in CLUSTERERS, "clustering.algorithm", f"must be one of {', '.join(CLUSTERERS)}"
        )
        _require(
            self.linkage in ("average", "complete", "single"),
            "clustering.linkage",
            "must be average, complete or single (ward needs raw euclidean features)",
        )
        _require(self.distance_threshold > 0, "clustering.distance_threshold", "must be > 0")
        _require(self.eps > 0, "clustering.eps", "must be > 0")
        _require(self.min_samples >= 1, "clustering.min_samples", "must be >= 1")
        _require(self.rank_neighbors >= 2, "clustering.rank_neighbors", "must be >= 2")
        _require(self.rank_threshold > 0, "clustering.rank_threshold", "must be > 0")
        _require(self.rank_normalized_threshold > 0, "clustering.rank_normalized_threshold", "must be > 0")
        _require(self.dense_max_faces >= 2, "clustering.dense_max_faces", "must be >= 2")
        _require(self.knn_neighbors >= 2, "clustering.knn_neighbors", "must be >= 2")




@dataclass
class PostprocessConfig:
    # Merge clusters whose normalised centroids are closer than these, anywhere (null disables that test). Off: at
    # 0.15 by face it changed nothing on five shared truths and joined two people on the sixth (the centroid of a
    # few poor faces lies near everyone's; docs/quality.md#the-centroid-merge).
    merge_face_threshold: float | None = None
    merge_cloth_threshold: float | None = None
    max_merge_passes: int = 5
    # Join a person's pieces within a scene by their centroids' fused distance (faces and the scene's clothing)
    # below clustering.distance_threshold, closest first (see person_cluster.postprocess).
    scene_merge: bool = True
    # The scene merge compares faces in each video's own metric, its strongest this many directions (see
    # person_cluster.metric); null: in dlib's space.
    scene_metric_dims: int | None = 32
    # Then join two clusters of one scene by their faces alone where each is nearer the other than anyone it was
    # seen beside (person_cluster.postprocess.merge_by_rivals): a person who changed clothes within the scene.
    rival_merge: bool = True
    # In it, the smaller of two clusters may also join the other by its own rivals alone, where the other is the
    # cluster of its scenes nearest to it: a large cluster was seen beside many people, and the nearest of many is
    # near, a bar a small piece of the same person rarely passes.
    rival_pieces: bool = True
    min_csize: int = 2  # smaller clusters become "unassigned" (cluster -1); their faces stay in the manifest

    def validate(self) -> None:
        for key in ("merge_face_threshold", "merge_cloth_threshold"):
            v = getattr(self, key)
            _require(v is None or v > 0, f"postprocess.{key}", "must be null or > 0")
        _require(self.max_merge_passes >= 0, "postprocess.max_merge_passes", "must be >= 0")
        _require(self.scene_metric_dims is None or 1 <= self.scene_metric_dims <= 127, "postprocess.scene_metric_dims",
                 "must be null or 1..127")
        _require(self.min_csize >= 1, "postprocess.min_csize", "must be >= 1")


@dataclass
class OutputConfig:
    # Crops are cut and encoded, and frames written, while extracting: these four are extraction settings.
    crop_margin: float = field(default=0.3, metadata=EXTRACTED)  # face crops extend the box by this share per side
    crop_max_side: int = field(default=200, metadata=EXTRACTED)  # stored crops are downscaled to this longer side
    jpeg_quality: int = field(default=90, metadata=EXTRACTED)
    montage_cell: int = 112
    montage_max_faces: int = 64
    save_frames: bool = field(default=True, metadata=EXTRACTED)  # write the sampled frames (frames/)
    plot: bool = True

    def validate(self) -> None:
        _require(0 <= self.crop_margin <= 2, "output.crop_margin", "must be 0..2")
        _require(16 <= self.crop_max_side <= 2048, "output.crop_max_side", "must be 16..2048")
        _require(1 <= self.jpeg_quality <= 100, "output.jpeg_quality", "must be 1..100")
        _require(16 <= self.montage_cell <= 512, "output.montage_cell", "must be 16..512")
        _require(self.montage_max_faces >= 1, "output.montage_max_faces", "must be >= 1")


@dataclass
class RuntimeConfig:
    # Detection + alignment threads; 0 = one per CPU core (dlib's MMOD CNN holds the GIL and always uses one).
    workers: int = 0
    queue_frames: int = 8  # frames in flight per worker; bounds memory on long videos
    # Face + clothing CNN threads (onnxruntime's) in the main thread; 0 = one per worker (Extractor.cnn_threads).
    cnn_threads: int = 0
    # Where extraction runs, a name in person_cluster.engine.ENGINES: "local" (this process) or "ray" (actors on a
    # Ray cluster, docs/cluster.md). Results are the same on both.
    engine: str = "local"
    # ray: the cluster's address (host:port of its head, or ray://host:port); null: $RAY_ADDRESS if set, else a
    # Ray started on this machine for the run and stopped after it.
    ray_address: str | None = None
    # ray: videos longer than this many seconds are split into keyframe-aligned chunks, read in parallel; null:
    # one video, one work unit.
    chunk_sec: float | None = None

    def validate(self) -> None:
        from .engine import ENGINES

        _require(self.workers >= 0, "runtime.workers", "must be >= 0 (0 = all cores)")
        _require(self.queue_frames >= 1, "runtime.queue_frames", "must be >= 1")
        _require(self.cnn_threads >= 0, "runtime.cnn_threads", "must be >= 0")
        _require(self.engine in ENGINES, "runtime.engine", f"must be one of {', '.join(ENGINES)}")
        _require(self.ray_address is None or bool(self.ray_address.strip()), "runtime.ray_address",
                 "must be null or an address")
        _require(self.chunk_sec is None or self.chunk_sec >= 1, "runtime.chunk_sec", "must be null or >= 1 (seconds)")

    def resolved_workers(self) -> int:
        return self.workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)




@dataclass
class Config:
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    cloth: ClothConfig = field(default_factory=ClothConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    scenes: ScenesConfig = field(default_factory=ScenesConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def validate(self) -> Config:
        for f in dataclasses.fields(self):
            getattr(self, f.name).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def extraction_dict(self) -> dict[str, Any]:
        """The settings that determine what the cache holds (:data:`EXTRACTION_KEYS`), by section."""
        d, out = self.to_dict(), {}
        for key in EXTRACTION_KEYS:
            section, name = key.split(".")
            out.setdefault(section, {})[name] = d[section][name]
        return out

    def get(self, key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(self, section), name)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any] | None) -> Config:
        """The config an OUT stored (a whole dump, as its version wrote it): a setting added since reads as
        :data:`EARLIER` says, so that ``add`` extracts new inputs as the OUT's were."""
        data = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (data or {}).items()}
        for key, value in EARLIER.items():
            section, name = key.split(".")
            if isinstance(data.get(section), dict):
                data[section].setdefault(name, value)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Config:
        data = upgrade(dict(data or {}))
        kwargs = {}
        sections = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in data.items():
            _require(name in sections, name, f"unknown section (known: {', '.join(sections)})")
            _require(isinstance(value, Mapping), name, "must be a mapping")
            kwargs[name] = _build_section(sections[name].default_factory, name, value)  # type: ignore[misc]
        return cls(**kwargs).validate()

    def with_overrides(self, overrides: list[str] | Mapping[str, Any]) -> Config:
        """Return a copy with ``section.key=value`` overrides applied (values parsed as YAML)."""
        d = self.to_dict()
        items = overrides.items() if isinstance(overrides, Mapping) else (_split_override(o) for o in overrides)
        for key, value in items:
            parts = key.split(".")
            _require(len(parts) == 2, key, "override keys look like section.key")
            section, name = parts
            _require(section in d, key, f"unknown section '{section}'")
            _require(key not in _RENAMED, key, f"renamed to {_RENAMED.get(key)}")
            _require(name in d[section], key, f"unknown key '{name}' in section '{section}'")
            d[section][name] = value
        return Config.from_dict(d)


# Settings whose values decide what extraction stores in the cache (features, crops, frames): changing one needs a
# new `run`; the others only change clustering and outputs, which `person-cluster cluster` redoes from the cache.
EXTRACTION_KEYS: tuple[str, ...] = tuple(
    f"{section.name}.{f.name}"
    for section in dataclasses.fields(Config)
    for f in dataclasses.fields(section.default_factory)  # type: ignore[arg-type]
    if getattr(section.default_factory, "EXTRACTED", False) or f.metadata.get("extracted", False)
)


# Extraction settings added after OUTs were first written, with the value an OUT written without them was extracted
# with (before cloth.colour, clothing was the CNN's features alone). An OUT's stored config and its cache's record of
# the extraction read a missing one as this; a config file that leaves one out gets the default, as for any key.
EARLIER: dict[str, Any] = {"cloth.colour": False, "face.align": "dlib", "detection.photo_border": 0.0,
                           "face.flip": "none"}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Settings as earlier versions wrote them (the config stored in an older OUT): ``fusion.cloth_window_sec:
    null`` (clothing always compared) is ``fusion.cloth_scope: always``; ``face.flip: true/false`` is ``all/none``."""
    face = data.get("face")
    if isinstance(face, Mapping) and isinstance(face.get("flip"), bool):
        data["face"] = {**face, "flip": "all" if face["flip"] else "none"}
    fusion = data.get("fusion")
    if isinstance(fusion, Mapping) and "cloth_window_sec" in fusion and fusion["cloth_window_sec"] is None:
        _require("cloth_scope" not in fusion, "fusion.cloth_window_sec",
                 "null (clothing always compared) is now fusion.cloth_scope: always")
        fusion = {k: v for k, v in fusion.items() if k != "cloth_window_sec"}
        data["fusion"] = {**fusion, "cloth_scope": "always"}
    return data


def _split_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    _require(bool(sep) and bool(key.strip()), text, "overrides look like section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {key}: value {raw!r} is not valid YAML ({exc.__class__.__name__})") from None
    return key.strip(), value


def _build_section(factory: Any, name: str, values: Mapping[str, Any]) -> Any:
    default = factory()
    known = {f.name: f for f in dataclasses.fields(default)}
    kwargs = {}
    for key, value in values.items():
        renamed = _RENAMED.get(f"{name}.{key}")
        _require(renamed is None, f"{name}.{key}", f"renamed to {renamed}")
        _require(key in known, f"{name}.{key}", f"unknown key (known: {', '.join(known)})")
        kwargs[key] = _coerce(f"{name}.{key}", getattr(default, key), value)
    return dataclasses.replace(default, **kwargs)


# Keys that were renamed: an old config gets a one-line error naming the new key.
_RENAMED = {"runtime.torch_threads": "runtime.cnn_threads"}

# Keys that may be null, with the type of their non-null values.
_NULLABLE: dict[str, type] = {
    "sampling.stop_sec": float,
    "detection.max_side": int,
    "detection.score_threshold": float,
    "cloth.weights_file": str,
    "postprocess.scene_metric_dims": int,
    "tracking.split_distance": float,
    "postprocess.merge_face_threshold": float,
    "postprocess.merge_cloth_threshold": float,
    "runtime.ray_address": str,
    "runtime.chunk_sec": float,
}


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Check a YAML value against the key's type; ints are accepted where floats are expected."""
    kind: type = _NULLABLE.get(key) or type(default)
    if value is None:
        _require(key in _NULLABLE, key, "may not be null")
        return None
    if kind is bool:
        _require(isinstance(value, bool), key, f"must be true or false, got {value!r}")
    elif kind is int:
        _require(isinstance(value, int) and not isinstance(value, bool), key, f"must be an integer, got {value!r}")
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        _require(ok, key, f"must be a number, got {value!r}")
        return float(value)
    elif kind is str:
        _require(isinstance(value, str), key, f"must be a string, got {value!r}")
    elif kind is list:
        _require(isinstance(value, list) and all(isinstance(v, str) for v in value), key, "must be a list of strings")
    return value


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> Config:
    """Load the YAML file at ``path`` (defaults when None) and apply ``section.key=value`` overrides."""
    data: Any = {}
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"config: cannot read {p}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config: {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
        _require(isinstance(data, Mapping), str(p), "the top level must be a mapping of sections")
    config = Config.from_dict(data)
    return config.with_overrides(overrides) if overrides else config
