"""Names of the folders and files a run writes into OUT (besides the feature cache, ``cache.CACHE_NAME``).

Kept apart from the modules that write them so that ``api`` can name them without importing those modules.
"""

# Rebuilt from the cache by every clustering: removed and written again each time.
REBUILT = ("people", "montages", "annotations", "clusters.png", "cast.csv", "timelines")
# Results of parameter sweeps against ground truth.
SWEEP_DIR = "sweeps"
