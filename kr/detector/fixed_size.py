"""Detectors that see a page at one fixed network size: the second seed's whole page
resized to 512 x 512, or large square patches of it (SPEC section 11).

The seed resizes "all images ... to 512x512 as a whole slide" and suggests large patches
(larger and fewer objects) as the way to better accuracy. Both are here, for any family
that derives its inference class from :class:`FixedSizeDetection`:

* :func:`patch_windows`: the windows a page is cut into (one, the whole page, without
  patches), each with the *core* it is responsible for, so that a character seen by two
  overlapping windows is reported once, by the window whose core holds its centre.
* :class:`FixedSizeTrainTransform`: a training example (the whole page, or a random patch,
  resized to the network size) with its boxes; :class:`CentredPatch` for validation, and
  :func:`make_page_datasets` for both.
* :func:`fixed_size_converter`: batches of those for a family's train chain.
* :class:`FixedSizeDetection`: ``predict`` / ``detect`` around a family's network: cut,
  resize, run, decode, map back to page pixels, merge by NMS and cap the count.

Boxes are ``x_min y_min x_max y_max``.
"""

import math

import chainer
import numpy as np
from chainer.datasets import TransformDataset

from kr.datasets.image import normalize_image
from kr.datasets.kuzushiji import KuzushijiPageDataset
from kr.datasets.image import to_array
from kr.detector.nms import non_maximum_suppression
from kr.detector.transforms import crop_and_resize
from kr.detector.transforms import ProcessRandom
from kr.detector.transforms import resize_image

#: Network input side of the seed's detectors ("resized to 512x512 as a whole slide").
PAGE_INPUT_SIZE = 512
#: Most detections per page: the competition allows 1,200 predictions per page and a real
#: page has up to 614 characters; the TF configs' caps of 100 / 300 cut recall (SPEC 11).
MAX_DETECTIONS = 1200
#: Share of a patch that its neighbour also covers: more than the tallest character's
#: share of a patch (about 0.15 of a patch of half the page width), so every character
#: lies whole in some window.
PATCH_OVERLAP = 0.25
#: Network input sides are multiples of this (the stride of an FPN's coarsest level P5;
#: P6 and P7 round up).
SIZE_MULTIPLE = 32


def _axis_windows(length: int, side: int, overlap: float):
    """Starts and core bounds of windows of ``side`` covering ``[0, length)``."""
    if side >= length:
        return [(0, length, 0.0, float(length))]
    step = side * (1 - overlap)
    n = int(math.ceil((length - side) / step)) + 1
    starts = [int(round(i * (length - side) / (n - 1))) for i in range(n)]
    # A core ends where the next window's overlap with this one is halved.
    bounds = [0.0] + [(starts[i] + side + starts[i + 1]) / 2 for i in range(n - 1)] \
        + [float(length)]
    return [(s, s + side, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


def patch_windows(height: int, width: int, fraction: float = None,
                  overlap: float = PATCH_OVERLAP):
    """The windows a page is detected in, and the core of each.

    Args:
        height: Page height in pixels.
        width: Page width in pixels.
        fraction: Side of a square patch as a fraction of the page's shorter side
            (``None``: the whole page is one window).
        overlap: Share of a patch covered by its neighbour, in ``[0, 1)``.

    Returns:
        list of ``(window, core)``: ``window`` ``(x_min, y_min, x_max, y_max)`` ints inside
        the page, row by row; ``core`` ``(x_min, y_min, x_max, y_max)`` floats, the part of
        the page whose detections the window reports. The cores tile the page.

    Raises:
        ValueError: A fraction outside ``(0, 1]`` or an overlap outside ``[0, 1)``.
    """
    if fraction is None:
        return [((0, 0, width, height), (0.0, 0.0, float(width), float(height)))]
    if not 0 < fraction <= 1:
        raise ValueError('patch fraction must be in (0, 1], got {}'.format(fraction))
    if not 0 <= overlap < 1:
        raise ValueError('patch overlap must be in [0, 1), got {}'.format(overlap))
    side = max(1, int(round(fraction * min(height, width))))
    windows = []
    for y1, y2, cy1, cy2 in _axis_windows(height, side, overlap):
        for x1, x2, cx1, cx2 in _axis_windows(width, side, overlap):
            windows.append(((x1, y1, x2, y2), (cx1, cy1, cx2, cy2)))
    return windows


def check_input_size(size: int) -> int:
    """``size`` if it is a positive multiple of :data:`SIZE_MULTIPLE`.

    Raises:
        ValueError: Otherwise (naming the value).
    """
    if size is None or size <= 0 or size % SIZE_MULTIPLE:
        raise ValueError('the network input side must be a positive multiple of {}, got {}'
                         .format(SIZE_MULTIPLE, size))
    return int(size)


class FixedSizeTrainTransform:
    """A page dataset item -> a fixed-size training example.

    Without ``patch_fraction`` the whole page is resized to ``size x size`` (the seed); with
    it, a square patch of side ``patch_fraction x`` the page's shorter side, placed uniformly
    at random, is resized (the outside of a patch that reaches past the page is paper
    colour). Boxes whose centre lies in the patch are kept, clipped to it.

    Args:
        size: Network input side (a multiple of 32).
        patch_fraction: Patch side as a fraction of the page's shorter side (``None``: the
            whole page).
        seed: Seed of the patch positions (``None``: fresh entropy).

    Call:
        ``item``: dict with ``image`` (PIL or ``(H, W, 3)`` uint8) and ``bboxes`` ``(R, 4)``
        page pixels.

    Returns:
        tuple ``(x, bboxes)``: ``(3, size, size)`` float32 normalised image and ``(K, 4)``
        float32 boxes in its pixels.
    """

    def __init__(self, size: int = PAGE_INPUT_SIZE, patch_fraction: float = None,
                 seed=None):
        self.size = check_input_size(size)
        if patch_fraction is not None and not 0 < patch_fraction <= 1:
            raise ValueError('patch fraction must be in (0, 1], got {}'.format(patch_fraction))
        self.patch_fraction = patch_fraction
        self.random = ProcessRandom(seed)

    def window(self, height: int, width: int):
        """The crop ``(x_min, y_min, x_max, y_max)`` of a page (random with patches)."""
        if self.patch_fraction is None:
            return 0, 0, width, height
        side = max(1, int(round(self.patch_fraction * min(height, width))))
        rng = self.random.get()
        x1 = int(rng.integers(0, max(0, width - side) + 1))
        y1 = int(rng.integers(0, max(0, height - side) + 1))
        return x1, y1, x1 + side, y1 + side

    def __call__(self, item):
        image = to_array(item['image'])
        window = self.window(*image.shape[:2])
        crop, bboxes = crop_and_resize(image, item['bboxes'], window, self.size)
        bboxes = np.clip(bboxes, 0, self.size)
        keep = (bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])
        return normalize_image(crop), bboxes[keep].astype(np.float32)


class CentredPatch(FixedSizeTrainTransform):
    """:class:`FixedSizeTrainTransform` with the patch at the page's centre: the same
    examples at every validation."""

    def window(self, height: int, width: int):
        if self.patch_fraction is None:
            return 0, 0, width, height
        side = max(1, int(round(self.patch_fraction * min(height, width))))
        x1, y1 = (width - side) // 2, (height - side) // 2
        return x1, y1, x1 + side, y1 + side


def make_page_datasets(data_dir: str, split_dir: str = None, cv_index: int = 0,
                       full_data: bool = False, input_size: int = PAGE_INPUT_SIZE,
                       patch_fraction: float = None, val_pages: int = 160, seed: int = None):
    """Training and validation datasets of a fixed-size detector.

    Args:
        data_dir: Kaggle-layout folder.
        split_dir: Fold CSVs of scripts/01_split_train_val.py (default ``<data_dir>-gsplit``).
        cv_index: Fold.
        full_data: Train on all of train.csv (``trainval``) instead of the fold's train part.
        input_size: Network input side.
        patch_fraction: Train on random square patches of this fraction of the page's
            shorter side (``None``: whole pages).
        val_pages: Validate on the first this many pages of the fold's val part.
        seed: Seed of the patch positions (``None``: fresh entropy).

    Returns:
        tuple ``(train, val_loss, val_map)``: ``train`` and ``val_loss`` give ``(x,
        bboxes)`` (random patches or whole pages; centred patches or whole pages),
        ``val_map`` the val page items themselves (dicts ``image`` / ``bboxes``: the mAP is
        taken on whole pages, detected as at inference). The validation sets are ``None``
        when the fold has no val pages.

    Raises:
        FileNotFoundError: Missing data or split files (naming the script to run).
        ValueError: No training pages.
    """
    pages = KuzushijiPageDataset(data_dir, 'trainval' if full_data else 'train', cv_index,
                                 split_dir)
    if len(pages) == 0:
        raise ValueError('no training pages in {}'.format(data_dir))
    train_set = TransformDataset(pages, FixedSizeTrainTransform(input_size, patch_fraction,
                                                                seed))
    val_pages_ds = KuzushijiPageDataset(data_dir, 'val', cv_index, split_dir)
    n_val = min(len(val_pages_ds), val_pages)
    if n_val == 0:
        return train_set, None, None
    val = chainer.datasets.SubDataset(val_pages_ds, 0, n_val)
    return train_set, TransformDataset(val, CentredPatch(input_size, patch_fraction)), val


@chainer.dataset.converter()
def fixed_size_converter(batch, device=None):
    """``[(x, bboxes), ...]`` -> ``(x (N, 3, S, S), [bboxes (R_i, 4), ...])`` on ``device``
    (the box counts differ, so the boxes stay a list)."""
    x = device.send(np.stack([example[0] for example in batch]))
    return x, [device.send(np.asarray(example[1], dtype=np.float32).reshape(-1, 4))
               for example in batch]


class FixedSizeDetection:
    """What a fixed-size detector does around its network, whatever runs the network.

    A subclass sets ``n_fg_class`` (1), ``score_threshold``, ``nms_threshold``,
    ``input_size``, ``patch_fraction``, ``patch_overlap`` and ``max_detections``, and
    defines:

    * ``run_network(x)``: ``(N, 3, S, S)`` float32 NumPy images normalised by
      ``kr.datasets.normalize_image`` -> the raw outputs, any tuple of arrays (NumPy or
      CuPy) with the batch first;
    * ``decode(outputs, score_threshold)``: those outputs -> a list, one per image, of
      ``(bboxes, scores)``: ``(R, 4)`` boxes in network-input pixels and ``(R,)``
      probabilities (NumPy or CuPy).

    Each window of :func:`patch_windows` (the whole page without patches) is resized to
    ``S x S``; its detections are mapped back to page pixels, kept when their centre lies
    in the window's core, merged over windows by NMS at ``nms_threshold`` and capped at
    ``max_detections``.
    """

    #: Network input sides are multiples of this.
    size_multiple = SIZE_MULTIPLE
    n_fg_class = 1
    input_size = PAGE_INPUT_SIZE
    patch_fraction = None
    patch_overlap = PATCH_OVERLAP
    max_detections = MAX_DETECTIONS

    @property
    def min_side(self) -> int:
        """The standard network input side (what the TTA wrappers call ``min_side``)."""
        return self.input_size

    def run_network(self, x):
        raise NotImplementedError

    def decode(self, outputs, score_threshold: float):
        raise NotImplementedError

    def predict(self, images, score_threshold: float = None):
        """Detect characters in page images.

        Args:
            images: Sequence of images: PIL, or ``(H, W)`` / ``(H, W, 3 or 4)`` uint8 arrays.
            score_threshold: Minimum probability (default: the model's).

        Returns:
            tuple ``(bboxes, labels, scores)`` of lists, one entry per image, as chainercv's
            detectors: ``(R, 4)`` float32 xyxy in that image's pixels, ``(R,)`` int32 class
            indices (0: "character") and ``(R,)`` float32 probabilities, highest first,
            ``R <= max_detections``; NumPy whatever the device.
        """
        all_bboxes, all_labels, all_scores = [], [], []
        for image in images:
            bboxes, scores = self.detect(image, score_threshold=score_threshold)
            all_bboxes.append(bboxes)
            all_labels.append(np.zeros(len(bboxes), dtype=np.int32))
            all_scores.append(scores)
        return all_bboxes, all_labels, all_scores

    def detect(self, image, min_side: int = None, score_threshold: float = None):
        """Detect the characters of a page.

        Args:
            image: PIL image or ``(H, W)`` / ``(H, W, 3 or 4)`` uint8 array.
            min_side: Network input side (default: :attr:`input_size`; a multiple of 32).
            score_threshold: Minimum probability (default: the model's).

        Returns:
            tuple ``(bboxes, scores)``: ``(R, 4)`` float32 xyxy page pixels and ``(R,)``
            float32 probabilities, highest first; NumPy.
        """
        size = check_input_size(self.input_size if min_side is None else min_side)
        threshold = self.score_threshold if score_threshold is None else score_threshold
        image = to_array(image)
        h, w = image.shape[:2]
        windows = patch_windows(h, w, self.patch_fraction, self.patch_overlap)
        x = np.stack([normalize_image(resize_image(image[y1:y2, x1:x2], (size, size)))
                      for (x1, y1, x2, y2), _ in windows])
        cpu = chainer.backend.CpuDevice()
        found = self.decode(self.run_network(x), threshold)
        page_bboxes, page_scores = [], []
        for ((x1, y1, x2, y2), core), (bboxes, scores) in zip(windows, found):
            bboxes = np.asarray(cpu.send(bboxes), dtype=np.float32).reshape(-1, 4)
            scores = np.asarray(cpu.send(scores), dtype=np.float32).reshape(-1)
            bboxes = bboxes * np.array([(x2 - x1) / size, (y2 - y1) / size] * 2,
                                       dtype=np.float32) + np.array([x1, y1, x1, y1],
                                                                    dtype=np.float32)
            cx = (bboxes[:, 0] + bboxes[:, 2]) / 2
            cy = (bboxes[:, 1] + bboxes[:, 3]) / 2
            inside = (cx >= core[0]) & (cx < core[2]) & (cy >= core[1]) & (cy < core[3])
            page_bboxes.append(bboxes[inside])
            page_scores.append(scores[inside])
        bboxes = np.concatenate(page_bboxes)
        scores = np.concatenate(page_scores)
        keep = non_maximum_suppression(bboxes, self.nms_threshold, scores,
                                       limit=self.max_detections)
        return bboxes[keep], scores[keep]
