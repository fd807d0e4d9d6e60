"""Read photos into BGR uint8 arrays, refusing what would not fit in memory."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .inputs import InputError

# 30,000 x 30,000 photos exist (scans, panoramas); decoding one takes 2.7 GB. 100 MP covers any camera.
MAX_IMAGE_PIXELS = 100_000_000


def read_image(path: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode any common photo (8/16-bit, grey, alpha, CMYK) into 3-channel BGR uint8."""
    try:
        # Reading the header first costs nothing and tells the size before any pixel is decoded.
        with Image.open(path) as im:
            width, height = im.size
    except UnidentifiedImageError:
        raise InputError("not a readable image") from None
    except Image.DecompressionBombError:  # PIL's own guard fires above ~179 MP, before ours
        raise InputError(f"image has more than the {max_pixels:,} pixels this tool decodes") from None
    except OSError as exc:
        raise InputError(exc.strerror or "cannot open file") from None
    if width * height > max_pixels:
        raise InputError(f"image is {width}x{height} pixels, more than the {max_pixels:,} this tool decodes")
    try:
        data = np.fromfile(path, dtype=np.uint8)  # imdecode: unicode and odd paths work everywhere
    except OSError as exc:
        raise InputError(exc.strerror or "cannot read file") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)  # converts 16-bit, grey, alpha and CMYK to 8-bit BGR
    if image is None:
        raise InputError("image data is corrupt or truncated")
    return image
