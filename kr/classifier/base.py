"""The interface every character classifier shares: logits from images, and ``classify``."""

import chainer
import chainer.functions as F
import numpy as np

from kr.bbox import padded_square_boxes
from kr.classifier.layers import make_divisible
from kr.classifier.transforms import CLASSIFY_PAD_RATIO
from kr.classifier.transforms import CLASSIFY_TTA_PAD_RATIOS
from kr.classifier.transforms import crop_resize
from kr.classifier.transforms import INPUT_SIZE
from kr.datasets.image import background_color
from kr.datasets.image import normalize_image
from kr.datasets.image import to_array

#: Crops per forward pass in :meth:`ClassifierBase.classify` (a page has up to ~600).
CLASSIFY_BATCH_SIZE = 256


def check_bboxes(bboxes) -> np.ndarray:
    """Validate character boxes: ``(R, 4)`` finite xyxy with ``max >= min``; returns float64.

    Raises:
        ValueError: Wrong shape, NaN/inf, or an inverted box (the row is named).
    """
    boxes = np.asarray(chainer.backend.CpuDevice().send(bboxes), dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError('bboxes must have shape (R, 4) as (x_min, y_min, x_max, y_max), '
                         'got {}'.format(boxes.shape))
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        raise ValueError('bboxes row {} is not finite: {}'.format(
            int(np.argmax(bad)), boxes[np.argmax(bad)].tolist()))
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if inverted.any():
        i = int(np.argmax(inverted))
        raise ValueError('bboxes row {} has max < min: {} (expected x_min, y_min, x_max, '
                         'y_max)'.format(i, boxes[i].tolist()))
    return boxes


def classification_crops(image, bboxes, size: int = INPUT_SIZE,
                         pad_ratio: float = CLASSIFY_PAD_RATIO) -> np.ndarray:
    """The classifier's input crops of one page.

    Each crop is the square centred on a box with side = longer box side x
    (1 + 2 x ``pad_ratio``) (:func:`kr.bbox.padded_square_boxes`), cut with the page's paper
    colour outside the page (as the training crops of script 02 were) and resized to
    ``size x size``. Degenerate boxes (zero width and height) give a one-pixel crop.

    Args:
        image: PIL image or ``(H, W, 3)`` uint8 RGB page.
        bboxes: ``(R, 4)`` float ``(x_min, y_min, x_max, y_max)`` in page pixels.
        size: Output side in pixels.
        pad_ratio: Margin per side as a fraction of the longer box side.

    Returns:
        ``(R, size, size, 3)`` uint8 RGB.

    Raises:
        ValueError: See :func:`check_bboxes`.
    """
    boxes = check_bboxes(bboxes)
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    if len(boxes) == 0:
        return out
    image = to_array(image)
    fill = background_color(image)
    for i, box in enumerate(padded_square_boxes(boxes, pad_ratio)):
        out[i] = crop_resize(image, box, size, fill=fill)
    return out


def check_pad_ratios(pad_ratios) -> tuple:
    """Crop margins of :func:`classify_boxes`: ``None`` is the single SPEC crop, ``'tta'``
    :data:`~kr.classifier.transforms.CLASSIFY_TTA_PAD_RATIOS`; else a non-empty sequence of
    numbers ``>= 0``.

    Raises:
        ValueError: An empty sequence or a margin that is not a number ``>= 0``.
    """
    if pad_ratios is None:
        return (CLASSIFY_PAD_RATIO,)
    if isinstance(pad_ratios, str) and pad_ratios == 'tta':
        return CLASSIFY_TTA_PAD_RATIOS
    try:
        ratios = tuple(float(r) for r in pad_ratios)
    except (TypeError, ValueError):
        ratios = ()
    if not ratios or not all(r >= 0 for r in ratios):
        raise ValueError("pad_ratios must be None, 'tta' or a non-empty sequence of crop "
                         'margins >= 0 (fractions of the longer box side), got {!r}'.format(
                             pad_ratios))
    return ratios


def classify_boxes(predict, image, bboxes, input_size: int,
                   batch_size: int = CLASSIFY_BATCH_SIZE, pad_ratios=None):
    """Crop every box of a page, run ``predict`` on batches of crops, take the argmax.

    The one implementation of ``classify`` for every backend (Chainer models and
    :class:`kr.onnx.OnnxClassifier`).

    Args:
        predict: ``(N, S, S, 3)`` uint8 crops -> ``(N, n_class)`` probabilities.
        image: PIL image or ``(H, W, 3)`` uint8 RGB page.
        bboxes: ``(R, 4)`` float xyxy boxes in page pixels.
        input_size: Crop side ``S``.
        batch_size: Crops per ``predict`` call.
        pad_ratios: Crop margins (:func:`check_pad_ratios`); with several, each box is
            cropped once per margin and the probabilities are averaged (crop test-time
            augmentation). Default: the SPEC's one crop of side 1.2 L.

    Returns:
        tuple: ``(R,)`` int32 class indices and ``(R,)`` float32 probabilities (of the
        average, with several margins).
    """
    boxes = check_bboxes(bboxes)
    ratios = check_pad_ratios(pad_ratios)
    indices = np.zeros(len(boxes), dtype=np.int32)
    scores = np.zeros(len(boxes), dtype=np.float32)
    if len(boxes) == 0:
        return indices, scores
    image = to_array(image)
    for start in range(0, len(boxes), batch_size):
        batch = boxes[start:start + batch_size]
        prob = sum(predict(classification_crops(image, batch, input_size, ratio))
                   for ratio in ratios) / len(ratios)
        indices[start:start + len(batch)] = prob.argmax(axis=1)
        scores[start:start + len(batch)] = prob.max(axis=1)
    return indices, scores


class ClassifierBase(chainer.Chain):
    """Base of the character classifiers: ``forward`` gives logits, ``classify`` labels boxes.

    Subclasses define ``forward(x)``: ``(N, 3, H, W)`` float32 normalised images ->
    ``(N, n_class)`` logits (any ``H, W`` works: the heads pool globally).

    Args:
        out_ch: Number of classes.
        width: Channel multiplier of the subclass's network.
        input_size: Side of the square crops ``classify`` feeds the network (pixels).

    Raises:
        ValueError: ``out_ch < 1``, ``width <= 0`` or ``input_size < 8``.
    """

    def __init__(self, out_ch: int, width: float = 1.0, input_size: int = INPUT_SIZE):
        super().__init__()
        if out_ch < 1 or width <= 0:
            raise ValueError('out_ch must be >= 1 and width > 0, got {} and {}'.format(
                out_ch, width))
        if int(input_size) < 8:
            raise ValueError('input_size must be at least 8 pixels, got {}'.format(input_size))
        self.out_ch = out_ch
        self.width = width
        self.input_size = int(input_size)

    def scaled(self, channels: int) -> int:
        """A layer's channel count at this network's ``width`` (multiples of 8, as the
        MobileNet family rounds them)."""
        return make_divisible(channels * self.width)

    def forward(self, x):
        raise NotImplementedError

    def predict(self, crops) -> np.ndarray:
        """Class probabilities of ready-made crops, in inference mode.

        Args:
            crops: ``(N, H, W, 3)`` uint8 RGB crops (NumPy or CuPy).

        Returns:
            ``(N, n_class)`` float32 softmax probabilities, NumPy.
        """
        x = normalize_image(self.device.send(crops))
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            prob = F.softmax(self.forward(x)).array
        return chainer.backend.CpuDevice().send(prob)

    def classify(self, image, bboxes, batch_size: int = CLASSIFY_BATCH_SIZE, pad_ratios=None):
        """Label every character box of a page (SPEC section 4, "Inference").

        Args:
            image: PIL image or ``(H, W, 3)`` uint8 RGB page.
            bboxes: ``(R, 4)`` float ``(x_min, y_min, x_max, y_max)`` in page pixels; boxes may
                reach outside the page.
            batch_size: Crops per forward pass.
            pad_ratios: Crop margins, several for crop test-time augmentation
                (:func:`classify_boxes`; ``'tta'``: :data:`CLASSIFY_TTA_PAD_RATIOS`).

        Returns:
            tuple: ``(indices, scores)``: ``(R,)`` int32 argmax class indices and ``(R,)``
            float32 softmax probabilities of those classes, NumPy on any device; both empty
            when ``bboxes`` is.

        Raises:
            ValueError: Malformed ``bboxes`` (see :func:`check_bboxes`) or ``pad_ratios``.
        """
        return classify_boxes(self.predict, image, bboxes, self.input_size, batch_size,
                              pad_ratios)
