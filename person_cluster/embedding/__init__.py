"""Stage 3 and 4: face descriptors (dlib) and clothing features (a torchvision CNN cut at a named stage)."""

from .clothing import ClothEmbedder, cloth_region
from .face import FaceEmbedder

__all__ = ["ClothEmbedder", "FaceEmbedder", "cloth_region"]
