"""Reading page images, cropping with fill, and the one pixel normalisation of ``kr``."""

import collections
import contextlib
import os
import threading

import chainer
import numpy as np
from PIL import Image

#: Pixel normalisation of the original training code: ``(x - 127.5) / 128``.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 128.0
#: Largest page ``load_image`` opens, in pixels: twice a 600-dpi scan of a large book page
#: (12,000 x 16,000 = 192 million), where PIL's own guard (89 million, against
#: decompression bombs) would refuse real scans. ``--max-image-pixels`` raises it.
MAX_IMAGE_PIXELS = 400_000_000
#: Modes of one-channel images wider than 8 bits, and the value that stands for white.
WIDE_MODES = {'I;16': 65535, 'I;16L': 65535, 'I;16B': 65535, 'I;16N': 65535, 'I': None,
               'F': None}
_PIL_LIMIT_LOCK = threading.Lock()


def set_max_image_pixels(limit: int) -> None:
    """Set the largest page :func:`load_image` opens (see :data:`MAX_IMAGE_PIXELS`).

    Raises:
        ValueError: A limit that is not a positive number.
    """
    global MAX_IMAGE_PIXELS
    if limit is None or int(limit) < 1:
        raise ValueError('--max-image-pixels must be a positive number, got {}'.format(limit))
    MAX_IMAGE_PIXELS = int(limit)


def to_8bit_grey(img: Image.Image) -> Image.Image:
    """A one-channel image of 16 or 32 bits (or floats) as 8-bit greyscale, scaled so that
    its type's white stays white (PIL's own ``convert`` clips such values to 255)."""
    a = np.asarray(img)
    white = WIDE_MODES[img.mode]
    if white is None:  # 32-bit integers or floats: take the range the data uses
        top = float(np.nanmax(a)) if a.size else 0.0
        white = 1.0 if img.mode == 'F' and top <= 1.0 else (255 if top <= 255 else
                                                            (65535 if top <= 65535 else top))
    a = np.clip(np.nan_to_num(a.astype(np.float64) * (255.0 / white)), 0, 255)
    return Image.fromarray(np.floor(a + 0.5).astype(np.uint8), 'L')


@contextlib.contextmanager
def open_image(path: str):
    """Open ``path`` with PIL after checking its size against :data:`MAX_IMAGE_PIXELS`;
    any decoding error inside the block becomes a ValueError that names the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError('image not found: {}'.format(path))
    try:
        with _PIL_LIMIT_LOCK:
            # our own size limit replaces PIL's decompression-bomb guard, checked below
            # from the header before any pixel is decoded
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        with img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ValueError('{} x {} pixels is more than the limit of {:,}; pass '
                                 '--max-image-pixels {} (or call '
                                 'kr.datasets.image.set_max_image_pixels) to open it'.format(
                                     w, h, MAX_IMAGE_PIXELS, w * h))
            yield img
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError('cannot read image {}: {}'.format(path, e)) from None


def load_image(path: str) -> Image.Image:
    """Open an image file as an RGB PIL image.

    Greyscale, palette, RGBA and CMYK are converted; 16-bit and 32-bit greyscale are scaled
    to 8 bits (16-bit white 65535 becomes 255). Pages up to :data:`MAX_IMAGE_PIXELS` open.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file cannot be decoded, or is larger than the limit (the message
            names the file and the flag that raises the limit).
    """
    with open_image(path) as img:
        img.load()
        if img.mode in WIDE_MODES:
            return to_8bit_grey(img).convert('RGB')
        return img.convert('RGB')


def check_image(path: str) -> None:
    """Check that an image file opens and decodes, faster than :func:`load_image`: a JPEG
    is decoded at 1/8 scale (its DCT allows that), which still reads every byte.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file cannot be decoded, or is larger than the limit (named).
    """
    with open_image(path) as img:
        if img.format == 'JPEG':
            w, h = img.size
            img.draft('RGB', (max(1, w // 8), max(1, h // 8)))
        img.load()


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


class ImageCache:
    """Decoded images kept in memory for a dataset that reads the same files again and
    again (random training crops of pages or characters).

    With a budget, the first load of an image decodes it to a read-only ``(H, W, 3)`` uint8
    array (a transform that wrote into it fails instead of changing the cached image) and
    keeps it, least recently used out first, while the kept bytes stay within the budget.
    Nothing is kept when the dataset would not fit: ``n_images`` times the first image's
    size, plus 10%, over the budget (random access to a set 50 times the budget would
    hit the cache 2% of the time for all of its memory). Without a budget, each load
    returns a freshly decoded ``PIL.Image`` (:func:`load_image`).

    Args:
        budget_bytes: Most bytes kept (0: none).
        n_images: Number of images of the dataset.
    """

    def __init__(self, budget_bytes: int, n_images: int):
        if budget_bytes < 0:
            raise ValueError('cache_bytes must be >= 0, got {}'.format(budget_bytes))
        self.budget_bytes = int(budget_bytes)
        self.n_images = int(n_images)
        self.nbytes = 0
        self._images = collections.OrderedDict()
        self._fits = None

    def __len__(self) -> int:
        return len(self._images)

    def load(self, key, path: str):
        """The image of ``path`` (``key`` names it in the cache)."""
        if not self.budget_bytes:
            return load_image(path)
        images = self._images
        if key in images:
            images.move_to_end(key)
            return images[key]
        image = to_array(load_image(path))
        image.flags.writeable = False
        if self._fits is None:
            self._fits = image.nbytes * self.n_images * 1.1 <= self.budget_bytes
        if self._fits and image.nbytes <= self.budget_bytes:
            images[key] = image
            self.nbytes += image.nbytes
            while self.nbytes > self.budget_bytes:
                self.nbytes -= images.popitem(last=False)[1].nbytes
        return image


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
