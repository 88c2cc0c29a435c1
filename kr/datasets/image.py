"""Reading page images, cropping with fill, and the one pixel normalisation of ``kr``."""

import os

import chainer
import numpy as np
from PIL import Image

#: Pixel normalisation of the original training code: ``(x - 127.5) / 128``.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 128.0


def load_image(path: str) -> Image.Image:
    """Open an image file as an RGB PIL image (grayscale, palette and RGBA are converted).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file cannot be decoded (the message names it).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('image not found: {}'.format(path))
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert('RGB')
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError('cannot read image {}: {}'.format(path, e)) from e


def to_array(image) -> np.ndarray:
    """A PIL image or an ``(H, W, 3)`` array -> ``(H, W, 3)`` uint8 RGB array (no copy if possible)."""
    if isinstance(image, Image.Image):
        if image.mode != 'RGB':
            image = image.convert('RGB')
        return np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError('expected an (H, W, 3) RGB image, got shape {}'.format(arr.shape))
    return arr[:, :, :3]


def normalize_image(image):
    """``(..., H, W, 3)`` RGB pixels (0-255) -> ``(..., 3, H, W)`` float32 ``(x - 127.5) / 128``.

    Used by every training transform, ``detect`` and ``classify``: the only place that knows
    the normalisation. Works on NumPy and CuPy arrays.
    """
    xp = chainer.backend.get_array_module(image)
    x = xp.asarray(image, dtype=np.float32)
    x = (x - np.float32(PIXEL_MEAN)) / np.float32(PIXEL_SCALE)
    return xp.ascontiguousarray(xp.moveaxis(x, -1, -3))


def background_color(image: np.ndarray) -> np.ndarray:
    """Median colour of a page, an estimate of its paper: ``(3,)`` uint8.

    Computed on a 1/8 subsample (the median of 2,400 x 3,900 pixels costs 10x more and
    moves by less than a grey level).
    """
    sample = np.asarray(image)[::8, ::8].reshape(-1, 3)
    return np.median(sample, axis=0).astype(np.uint8)


def crop_with_fill(image: np.ndarray, box, fill) -> np.ndarray:
    """Crop ``image`` to an integer box that may reach outside it, filling outside pixels.

    Args:
        image: ``(H, W, C)`` array.
        box: ``(x_min, y_min, x_max, y_max)`` integers in pixels, max exclusive.
        fill: Scalar or ``(C,)`` value for pixels outside the image.

    Returns:
        ``(y_max - y_min, x_max - x_min, C)`` array of ``image``'s dtype.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = image.shape[:2]
    out = np.empty((max(y2 - y1, 0), max(x2 - x1, 0)) + image.shape[2:], dtype=image.dtype)
    out[...] = fill
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return out
