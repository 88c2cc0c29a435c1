"""Image and box transforms shared by the detector families.

* :func:`resize_image`: OpenCV resize of a page or crop (area when shrinking).
* :func:`crop_and_resize`: a crop of a page (outside filled with the paper colour) resized to
  a square, with the boxes whose centre lies in it.
* :class:`ProcessRandom`: a NumPy Generator per data-loading process.
"""

import os

import cv2
import numpy as np

from kr.datasets import background_color
from kr.datasets import crop_with_fill


def resize_image(image: np.ndarray, size) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``size = (h, w)`` with OpenCV (area
    interpolation when shrinking, bilinear when enlarging)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(np.ascontiguousarray(image), (w, h),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def crop_and_resize(image: np.ndarray, bboxes: np.ndarray, box, out_size: int):
    """Crop ``image`` to the pixel ``box`` (outside filled with the paper colour), resize to
    ``out_size`` square, and keep the boxes whose centre lies inside the crop.

    Args:
        image: ``(H, W, 3)`` uint8 page.
        bboxes: ``(R, 4)`` float page-pixel xyxy boxes.
        box: ``(x_min, y_min, x_max, y_max)`` ints, the crop (may reach outside the page).
        out_size: Output side in pixels.

    Returns:
        tuple ``(crop, bboxes)``: ``(out_size, out_size, 3)`` uint8 and ``(K, 4)`` float32
        boxes in crop pixels (not clipped: a box may reach outside the crop).
    """
    x1, y1, x2, y2 = box
    crop = crop_with_fill(image, box, background_color(image))
    crop = resize_image(crop, (out_size, out_size))
    bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
    centers = (bboxes[:, :2] + bboxes[:, 2:]) / 2
    inside = ((centers[:, 0] >= x1) & (centers[:, 0] < x2)
              & (centers[:, 1] >= y1) & (centers[:, 1] < y2))
    scale = np.array([out_size / (x2 - x1), out_size / (y2 - y1)] * 2, dtype=np.float32)
    shift = np.array([x1, y1, x1, y1], dtype=np.float32)
    return crop, ((bboxes[inside] - shift) * scale).astype(np.float32)


class ProcessRandom:
    """A NumPy Generator per process: MultiprocessIterator forks workers that would
    otherwise share (and repeat) one random state."""

    def __init__(self, seed=None):
        self.seed = seed
        self._owner = os.getpid()
        self._pid = None
        self._rng = None

    def get(self) -> np.random.Generator:
        pid = os.getpid()
        if self._pid != pid:
            if self.seed is None:
                entropy = None
            elif pid == self._owner:
                entropy = int(self.seed)
            else:
                # A worker: different from its siblings, reproducible only up to pids.
                entropy = [int(self.seed), pid]
            self._rng = np.random.default_rng(entropy)
            self._pid = pid
        return self._rng

    def __getstate__(self):
        return {'seed': self.seed, '_owner': self._owner, '_pid': None, '_rng': None}
