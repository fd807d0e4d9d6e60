"""Where extraction runs: one module per engine behind :class:`base.Engine`; :data:`ENGINES` names them.

``local`` runs the extractor's threads in this process (the default); ``ray`` spreads work units (an input, or a
chunk of a long video) over a Ray cluster's actors and stores their results here. Both store the same results into
OUT's cache, in the same order, so a run gives the same manifest on either and resumes on either. Adding an engine:
a module with a :class:`base.Engine` subclass, and a line here. Modules are imported only when their engine is made,
so the config checks a name without importing Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from .base import Engine

# name in the config -> (module in this package, class)
ENGINES: dict[str, tuple[str, str]] = {
    "local": ("local", "LocalEngine"),  # this process: a decoding thread, detection threads, CNNs in batches
    "ray": ("ray", "RayEngine"),  # actors on a Ray cluster (pip install person-cluster[ray])
}


def engine_class(name: str) -> type[Engine]:
    module, cls = ENGINES[name]  # config validation guarantees the name
    return getattr(importlib.import_module(f".{module}", __name__), cls)


def make_engine(config: Config, progress: bool = True, preload: tuple[str, ...] = ()) -> Engine:
    """The engine ``runtime.engine`` names, started (models loaded or loading, workers up)."""
    return engine_class(config.runtime.engine)(config, progress, preload)


__all__ = ["ENGINES", "engine_class", "make_engine"]
