"""person_cluster: find the people in videos and photo collections without training labels.

Stages, one module (or package) each: sampling -> detection -> embedding -> fusion -> clustering ->
postprocess -> outputs, with the feature cache between extraction and clustering; ``api`` ties them together.
"""

from .config import Config, load_config
from .errors import PersonClusterError

__version__ = "0.1.0"

__all__ = ["Config", "PersonClusterError", "__version__", "load_config"]
