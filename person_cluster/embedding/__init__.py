"""Stage 3 and 4: face descriptors (dlib's network) and clothing features (a torchvision CNN cut at a named stage)."""

from .clothing import ClothEmbedder, cloth_region
from .face import FaceAligner, FaceEmbedder, FaceEncoder

__all__ = ["ClothEmbedder", "FaceAligner", "FaceEmbedder", "FaceEncoder", "cloth_region"]
