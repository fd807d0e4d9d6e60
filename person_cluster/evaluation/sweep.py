"""A grid of settings re-clustered from OUT's feature cache and scored against ground truth.

Grid file (YAML)::

    truth: folders              # or a CSV truth file (a relative path is taken from the grid file's folder)
    fixed:                      # optional: settings applied to every run
      postprocess.min_csize: 1
    grid:                       # every combination of these values is run
      fusion.cloth_weight: [0.0, 0.5]
      clustering.distance_threshold: [0.35, 0.40, 0.45, 0.50]

Only fusion, clustering, post-processing and output settings can vary: the others decide the cached features.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..cache import CACHE_NAME, FeatureCache
from ..config import EXTRACTION_KEYS, Config, ConfigError
from ..layout import SWEEP_DIR
from .metrics import METRIC_KEYS
from .truth import TruthError, load_truth

log = logging.getLogger(__name__)

# Higher is better for these; the best setting of each is reported.
BEST_OF = ("nmi", "ari", "pairwise_f", "bcubed_f", "purity")


@dataclass
class Grid:
    truth: str
    fixed: dict[str, Any]
    axes: dict[str, list[Any]]

    def settings(self) -> list[dict[str, Any]]:
        keys = list(self.axes)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.axes[k] for k in keys))]


def load_grid(path: str | Path, truth: str | None = None) -> Grid:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read grid file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("grid"), dict) or not data["grid"]:
        raise ConfigError(f"{path}: needs a 'grid' mapping of config keys to lists of values")
    unknown = set(data) - {"truth", "fixed", "grid"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} (truth, fixed, grid)")
    axes = {}
    for key, values in data["grid"].items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty list")
        if str(key) in EXTRACTION_KEYS:
            raise ConfigError(f"{path}: {key} decides the extracted features and cannot be swept from the cache")
        axes[str(key)] = values
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise ConfigError(f"{path}: 'fixed' must be a mapping of config keys to values")
    truth = truth or data.get("truth")
    if not truth:
        raise ConfigError(f"{path}: no truth given (a 'truth:' line in the grid, or --truth)")
    if truth != "folders" and not Path(truth).is_absolute() and not Path(truth).exists():
        truth = str(path.parent / truth)
    return Grid(str(truth), fixed, axes)


def run_sweep(out: str | Path, grid: Grid) -> list[dict[str, Any]]:
    """One row per setting: the setting, every metric, and the clustering wall time."""
    from ..api import ClusteringInput, cluster_table, prepare_clustering

    out = Path(out)
    with FeatureCache.open_existing(out / CACHE_NAME) as cache:
        base = Config.from_stored(cache.get_meta("config")).with_overrides(grid.fixed)
        table = cache.load_table()
        sampled = cache.frames()
    settings = grid.settings()
    configs = [base.with_overrides(s) for s in settings]  # validates every setting before any work
    match = load_truth(grid.truth).match(table.sources, table.frames, table.bboxes, sampled)
    if len(match.faces) == 0:
        raise TruthError(f"{grid.truth}: no detected face of this run matches the truth")
    from . import score

    rows, prepared, prepared_key = [], None, None
    for setting, config in zip(settings, configs):
        started = time.perf_counter()
        key = ClusteringInput.key(config)
        if key != prepared_key:  # tracks and distances: reused across the other clustering settings
            prepared, prepared_key = prepare_clustering(table, config), key
        labels = cluster_table(table, config, prepared)
        row = {**setting, **score(match, labels, table.sources, table.frames), "seconds": round(time.perf_counter() - started, 3)}
        log.info("%s", {k: row[k] for k in (*setting, "nmi", "pairwise_f", "bcubed_f")})
        rows.append(row)
    return rows


def best_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m: max(rows, key=lambda r: r[m]) for m in BEST_OF}


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


def plot_sweep(rows: list[dict[str, Any]], axes: list[str], path: Path) -> None:
    """NMI, pairwise F and BCubed F against the last numeric axis, one line per combination of the others."""
    from matplotlib.figure import Figure  # the object API: no process-wide backend, no display

    numeric = [a for a in axes if all(isinstance(r[a], (int, float)) and not isinstance(r[a], bool) for r in rows)]
    x_key = numeric[-1] if numeric else None
    others = [a for a in axes if a != x_key]
    fig = Figure(figsize=(15, 4.5))
    panels = fig.subplots(1, 3, sharey=True)
    for panel, metric in zip(panels, ("nmi", "pairwise_f", "bcubed_f")):
        series: dict[tuple, list[tuple[Any, float]]] = {}
        for i, r in enumerate(rows):
            series.setdefault(tuple(r[a] for a in others), []).append((r[x_key] if x_key else i, r[metric]))
        for name, points in series.items():
            points.sort(key=lambda p: p[0])
            label = ", ".join(f"{a.split('.')[-1]}={v}" for a, v in zip(others, name)) or metric
            panel.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        panel.set_title(metric)
        panel.set_xlabel(x_key or "setting")
        panel.grid(alpha=0.3)
    panels[0].set_ylabel("score")
    panels[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def sweep_out(out: str | Path, grid_path: str | Path, truth: str | None = None) -> tuple[list[dict[str, Any]], Path, Path]:
    """Run the grid, write ``OUT/sweeps/<grid>.csv`` and ``.png``; returns the rows and the two paths."""
    from ..outputs import write_atomic

    grid = load_grid(grid_path, truth)
    rows = run_sweep(out, grid)
    folder = Path(out) / SWEEP_DIR
    folder.mkdir(exist_ok=True)
    csv_path, png_path = folder / f"{Path(grid_path).stem}.csv", folder / f"{Path(grid_path).stem}.png"
    write_atomic(csv_path, to_csv(rows).encode())
    tmp = folder / f".{png_path.name}.tmp.png"
    plot_sweep(rows, list(grid.axes), tmp)
    tmp.replace(png_path)
    return rows, csv_path, png_path


__all__ = ["BEST_OF", "METRIC_KEYS", "Grid", "best_rows", "load_grid", "run_sweep", "sweep_out"]
