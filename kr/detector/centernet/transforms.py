"""Image preprocessing and training augmentation of the CenterNet detector.

* :func:`inference_size` / :func:`resize_image`: the page resize of ``detect``.
* :class:`RandomCropResize`, :class:`CenterCropResize`: the training and validation crops.
* :class:`ColorAugmentation`: albumentations 2.x equivalents of the original's colour list.
* :class:`CenterNetTrainTransform`: crop + colour + normalise + targets, for
  ``chainer.datasets.TransformDataset``.

Dataset items are dicts (``image`` PIL or ``(H, W, 3)`` uint8, ``bboxes`` ``(R, 4)`` float32
``x_min y_min x_max y_max`` page pixels), as ``kr.datasets.KuzushijiPageDataset`` gives.
"""

import os

import numpy as np

from kr.datasets import normalize_image
from kr.datasets import to_array
from kr.detector.centernet.heatmap import generate_targets
from kr.detector.centernet.heatmap import HEATMAP_STRIDE
from kr.detector.centernet.heatmap import MIN_SIGMA
from kr.detector.transforms import crop_and_resize
from kr.detector.transforms import ProcessRandom
from kr.detector.transforms import resize_image  # NOQA (kr.detector.centernet.transforms API)

#: Shorter page side at inference (the original's detector input).
IMAGE_MIN_SIDE = 832
#: Network inputs must be multiples of the encoder's total stride.
SIZE_MULTIPLE = 32
#: Training crop side in network pixels (the original's 416 x 416).
CROP_SIZE = 416
#: Crop side as a fraction of the page's shorter side, for ``crop_size = 416``: 0.35-0.65
#: (original). Its mean, 0.5, maps the page to a shorter side of 832 = IMAGE_MIN_SIDE,
#: the inference scale; other crop sizes keep that link (see :func:`crop_fraction_range`).
CROP_FRACTION_RANGE = (0.35, 0.65)
#: Largest aspect ratio (longer / shorter side) of a random crop (original).
MAX_CROP_ASPECT = 1.3
#: Fill value of coarse dropout holes (original).
DROPOUT_FILL = 100


def crop_fraction_range(crop_size: int = CROP_SIZE, min_side: int = IMAGE_MIN_SIDE):
    """Crop-side fractions of the shorter page side whose mean scale matches ``min_side``.

    For the original 416 px crops this is (0.35, 0.65); a smaller ``crop_size`` takes a
    proportionally smaller piece of the page, so that characters have the same size in
    pixels in training crops and at inference (shorter side ``min_side``).
    """
    mean = sum(CROP_FRACTION_RANGE) / 2
    factor = crop_size / (mean * min_side)
    return (CROP_FRACTION_RANGE[0] * factor, CROP_FRACTION_RANGE[1] * factor)


def inference_size(height: int, width: int, min_side: int = IMAGE_MIN_SIDE):
    """Network input size ``(H, W)`` of a page: shorter side ``min_side`` (``None``: the
    page's own), both sides rounded to multiples of 32 (at least 32)."""
    scale = 1.0 if min_side is None else min_side / min(height, width)

    def _round(v):
        return max(SIZE_MULTIPLE, int(round(v * scale / SIZE_MULTIPLE)) * SIZE_MULTIPLE)
    return _round(height), _round(width)


class RandomCropResize:
    """Random crop of a page resized to a square (the original's training crop).

    The crop's geometric-mean side is a uniform fraction (``fraction_range``) of the
    page's shorter side, its aspect ratio log-uniform up to ``max_aspect`` either way, its
    position uniform (a crop larger than the page is centred and filled with the paper
    colour). Boxes whose centre falls outside are dropped.

    Args:
        out_size: Output side in pixels.
        fraction_range: Range of the crop side / shorter page side (default: from
            :func:`crop_fraction_range` for ``out_size``).
        max_aspect: Largest aspect ratio.
        seed: Seed of the per-process generator (``None``: fresh entropy).
    """

    def __init__(self, out_size: int = CROP_SIZE, fraction_range=None,
                 max_aspect: float = MAX_CROP_ASPECT, seed=None):
        self.out_size = out_size
        self.fraction_range = tuple(fraction_range or crop_fraction_range(out_size))
        self.max_aspect = max_aspect
        self.random = ProcessRandom(seed)

    def crop_box(self, height: int, width: int):
        """Draw a crop ``(x_min, y_min, x_max, y_max)`` (ints) for a ``height x width`` page."""
        rng = self.random.get()
        side = rng.uniform(*self.fraction_range) * min(height, width)
        aspect = np.exp(rng.uniform(-np.log(self.max_aspect), np.log(self.max_aspect)))
        cw = max(1, int(round(side * np.sqrt(aspect))))
        ch = max(1, int(round(side / np.sqrt(aspect))))
        x1 = int(rng.integers(0, width - cw + 1)) if cw <= width else (width - cw) // 2
        y1 = int(rng.integers(0, height - ch + 1)) if ch <= height else (height - ch) // 2
        return x1, y1, x1 + cw, y1 + ch

    def __call__(self, image: np.ndarray, bboxes: np.ndarray):
        box = self.crop_box(*image.shape[:2])
        return crop_and_resize(image, bboxes, box, self.out_size)


class CenterCropResize:
    """Square centre crop at the mean training scale, resized (the validation crop).

    Args:
        out_size: Output side in pixels.
        fraction: Crop side / shorter page side (default: the mean of
            :func:`crop_fraction_range` for ``out_size``).
    """

    def __init__(self, out_size: int = CROP_SIZE, fraction: float = None):
        self.out_size = out_size
        self.fraction = fraction or sum(crop_fraction_range(out_size)) / 2

    def __call__(self, image: np.ndarray, bboxes: np.ndarray):
        h, w = image.shape[:2]
        side = max(1, int(round(self.fraction * min(h, w))))
        x1, y1 = (w - side) // 2, (h - side) // 2
        return crop_and_resize(image, bboxes, (x1, y1, x1 + side, y1 + side), self.out_size)


class ColorAugmentation:
    """The original's colour augmentation with albumentations 2.x.

    One of (RGB shift, to-gray, nothing); random brightness/contrast; one of (Gaussian
    noise, additive Gaussian noise, coarse dropout filled with 100). The original's
    albumentations 0.3 ``GaussNoise(var_limit=(10, 50))`` (per-channel) becomes
    ``GaussNoise`` with std sqrt(10)-sqrt(50) grey levels, and imgaug's
    ``IAAAdditiveGaussianNoise`` (std 0.01-0.05 x 255, same noise on all channels) becomes
    ``GaussNoise(per_channel=False)``; coarse dropout keeps 0.3's up to 8 holes of 8 px.

    Args:
        seed: Seed of the per-process generator (``None``: fresh entropy).
    """

    def __init__(self, seed=None):
        self.random = ProcessRandom(seed)
        self._compose = None
        self._pid = None

    def _build(self):
        import albumentations as A
        return A.Compose([
            A.OneOf([A.RGBShift(p=1.0), A.ToGray(p=1.0), A.NoOp(p=1.0)], p=1.0),
            A.RandomBrightnessContrast(p=0.5),
            A.OneOf([
                A.GaussNoise(std_range=(np.sqrt(10) / 255, np.sqrt(50) / 255), p=1.0),
                A.GaussNoise(std_range=(0.01, 0.05), per_channel=False, p=1.0),
                A.CoarseDropout(num_holes_range=(1, 8), hole_height_range=(8, 8),
                                hole_width_range=(8, 8), fill=DROPOUT_FILL, p=1.0),
            ], p=1.0),
        ])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> augmented ``(H, W, 3)`` uint8."""
        if self._compose is None or self._pid != os.getpid():
            self._compose = self._build()
            self._compose.set_random_seed(int(self.random.get().integers(2 ** 31)))
            self._pid = os.getpid()
        return self._compose(image=np.ascontiguousarray(image))['image']

    def __getstate__(self):
        return {'random': self.random, '_compose': None, '_pid': None}


class CenterNetTrainTransform:
    """Dataset item -> network input and dense targets.

    Args:
        crop: A crop callable ``(image, bboxes) -> (crop, bboxes)`` such as
            :class:`RandomCropResize` or :class:`CenterCropResize`.
        color: ``image -> image`` augmentation (``None`` for validation).
        n_fg_class: Number of classes (all boxes are class 0, "character").
        stride: Input pixels per output cell.
        min_sigma: Floor of the heatmap Gaussians' sigma in cells (:func:`generate_targets`).

    Call:
        ``item``: dict with ``image`` (PIL, or ``(H, W, 3)`` uint8; grayscale and RGBA are
        converted) and ``bboxes`` ``(R, 4)`` page-pixel xyxy.

    Returns:
        tuple ``(x, heatmap, size, offset, mask)`` of float32 arrays: ``(3, S, S)``
        normalised crop, then the targets of :func:`generate_targets` on the
        ``(S / stride, S / stride)`` grid.
    """

    def __init__(self, crop, color=None, n_fg_class: int = 1, stride: int = HEATMAP_STRIDE,
                 min_sigma: float = MIN_SIGMA):
        self.crop = crop
        self.min_sigma = min_sigma
        self.color = color
        self.n_fg_class = n_fg_class
        self.stride = stride

    def __call__(self, item):
        image, bboxes = self.crop(to_array(item['image']), item['bboxes'])
        if self.color is not None:
            image = self.color(image)
        shape = (image.shape[0] // self.stride, image.shape[1] // self.stride)
        t = generate_targets(bboxes, np.zeros(len(bboxes), dtype=np.int32), self.n_fg_class,
                             shape, self.stride, self.min_sigma)
        return normalize_image(image), t['heatmap'], t['size'], t['offset'], t['mask']


class CropOnly:
    """Dataset item -> dict with the cropped ``image`` (uint8) and its ``bboxes``, for the
    validation mAP (detection runs on the crop as it is).

    Args:
        crop: A crop callable such as :class:`CenterCropResize`.
    """

    def __init__(self, crop):
        self.crop = crop

    def __call__(self, item):
        image, bboxes = self.crop(to_array(item['image']), item['bboxes'])
        return {'image': image, 'bboxes': bboxes}
