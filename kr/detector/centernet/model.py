"""Res18UnetCenterNet: the character detector (SPEC section 3).

A ResNet18 encoder, a U-Net decoder back to stride 4, and one 3x3 output convolution that
predicts CenterNet's class heatmap, box size and centre offset (Zhou et al., "Objects as
Points", arXiv:1904.07850; Ronneberger et al., "U-Net", arXiv:1505.04597).
"""

import chainer
import chainer.functions as F
import numpy as np

from kr.datasets.image import normalize_image
from kr.datasets.image import to_array
from kr.detector.centernet.backbone import ResNet18Encoder
from kr.detector.centernet.decode import decode
from kr.detector.centernet.decode import initial_head_bias
from kr.detector.centernet.decode import n_output_channels
from kr.detector.centernet.heatmap import HEATMAP_STRIDE
from kr.detector.centernet.transforms import IMAGE_MIN_SIDE
from kr.detector.centernet.transforms import inference_size
from kr.detector.centernet.transforms import resize_image
from kr.detector.centernet.transforms import SIZE_MULTIPLE
from kr.detector.nms import per_class_nms
from kr.functions import BatchNormalization
from kr.functions import Convolution2D
from kr.functions import Deconvolution2D

#: Default detection threshold, a probability: the original compared 0.5 with raw logits
#: (quirk (a) of SPEC section 3), and sigmoid(0.5) = 0.622.
SCORE_THRESHOLD = 0.62
#: The submission threshold, likewise: the original's 0.3 on logits, sigmoid(0.3) = 0.574.
SUBMISSION_SCORE_THRESHOLD = 0.57
#: IoU of the final NMS (original).
NMS_THRESHOLD = 0.5
#: Initial bias of the class logits, log(0.1 / 0.9): CenterNet's prior probability 0.1,
#: which keeps the focal loss from being swamped by the background at the start.
SCORE_BIAS_INIT = -2.19


class UpBlock(chainer.Chain):
    """U-Net up-block: 4x4 stride-2 transposed conv halving the channels + BN + ReLU, then
    3x3 conv + BN + ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = max(1, in_channels // 2)
        with self.init_scope():
            self.deconv = Deconvolution2D(in_channels, mid, 4, 2, 1, nobias=True)
            self.bn1 = BatchNormalization(mid)
            self.conv = Convolution2D(mid, out_channels, 3, 1, 1, nobias=True)
            self.bn2 = BatchNormalization(out_channels)

    def forward(self, x):
        h = F.relu(self.bn1(self.deconv(x)))
        return F.relu(self.bn2(self.conv(h)))


class CenterNetDetection:
    """What a CenterNet detector does around its network, whatever runs the network.

    Resizing, normalisation, decoding (:mod:`kr.detector.centernet.decode`), per-class NMS
    and scaling back are here, once, for every backend: the Chainer model
    (:class:`Res18UnetCenterNet`) and the ONNX Runtime one (:mod:`kr.onnx.runtime`) differ
    only in :meth:`run_network`.

    A subclass sets ``n_fg_class``, ``score_threshold`` and ``nms_threshold``, and defines
    ``run_network(x)``: ``(N, 3, H, W)`` float32 NumPy images normalised by
    ``kr.datasets.normalize_image`` (``H``, ``W`` multiples of 32) -> ``(N, n_fg_class + 4,
    H / 4, W / 4)`` raw head output (NumPy or CuPy).
    """

    #: Input pixels per output cell.
    stride = HEATMAP_STRIDE
    #: Network input sides are multiples of this (the encoder's total stride).
    size_multiple = SIZE_MULTIPLE
    #: Shorter side of the network input at the standard scale (adaptive-scale TTA starts
    #: from it).
    min_side = IMAGE_MIN_SIDE

    def run_network(self, x):
        raise NotImplementedError

    def network_size(self, height: int, width: int, min_side: int = IMAGE_MIN_SIDE):
        """``(H, W)`` network input that :meth:`detect` resizes a ``height x width`` page to
        for ``min_side`` (the detections depend on nothing else: see :mod:`kr.detector.tta`)."""
        return inference_size(height, width, min_side)

    def predict(self, images, score_threshold: float = None):
        """Detect characters in images at (about) their own size.

        Each image is resized to the nearest multiples of 32 (OpenCV), detected, and the
        boxes are scaled back.

        Args:
            images: Sequence of images: PIL, or ``(H, W)`` / ``(H, W, 3 or 4)`` uint8 arrays.
            score_threshold: Minimum class probability (default: the model's).

        Returns:
            tuple ``(bboxes, labels, scores)`` of lists, one entry per image, as chainercv's
            detectors: ``(R, 4)`` float32 ``x_min y_min x_max y_max`` in that image's
            pixels, ``(R,)`` int32 class indices (0: "character") and ``(R,)`` float32
            probabilities, highest first; NumPy whatever the device.
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        all_bboxes, all_labels, all_scores = [], [], []
        cpu = chainer.backend.CpuDevice()
        for image in images:
            image = to_array(image)
            h, w = image.shape[:2]
            size = inference_size(h, w, None)
            y = self.run_network(normalize_image(resize_image(image, size))[None])[0]
            bboxes, labels, scores = decode(y, self.n_fg_class, threshold, self.stride)
            keep = self._nms(bboxes, labels, scores)
            scale = np.array([w / size[1], h / size[0]] * 2, dtype=np.float32)
            all_bboxes.append(cpu.send(bboxes[keep]) * scale)
            all_labels.append(cpu.send(labels[keep]).astype(np.int32))
            all_scores.append(cpu.send(scores[keep]))
        return all_bboxes, all_labels, all_scores

    def _nms(self, bboxes, labels, scores):
        """Per-class NMS; indices of the kept boxes, highest score first."""
        return per_class_nms(bboxes, labels, scores, self.nms_threshold, self.n_fg_class)

    def detect(self, image, min_side: int = IMAGE_MIN_SIDE, score_threshold: float = None):
        """Detect the characters of a page.

        The page is resized so that its shorter side is ``min_side`` and both sides are
        multiples of 32, detected, and the boxes are scaled back to page pixels.

        Args:
            image: PIL image or ``(H, W)`` / ``(H, W, 3 or 4)`` uint8 array (grayscale and
                RGBA are converted to RGB).
            min_side: Shorter side of the network input (``None``: the page's own size).
            score_threshold: Minimum class probability (default: the model's).

        Returns:
            tuple ``(bboxes, scores)``: ``(R, 4)`` float32 ``x_min y_min x_max y_max`` in
            page pixels and ``(R,)`` float32 probabilities, highest first; NumPy arrays
            whatever the device.
        """
        image = to_array(image)
        h, w = image.shape[:2]
        size = self.network_size(h, w, min_side)
        bboxes, _, scores = self.predict([resize_image(image, size)], score_threshold)
        scale = np.array([w / size[1], h / size[0]] * 2, dtype=np.float32)
        return (bboxes[0] * scale).astype(np.float32), scores[0]


class Res18UnetCenterNet(CenterNetDetection, chainer.Chain):
    """CenterNet character detector with a ResNet18 U-Net.

    Decoder (channels for ``width=1.0``): 512 -> up 256; concat the stride-16 features
    (512) -> up 128; concat stride 8 (256) -> up 64; concat stride 4 (128) -> 3x3 conv to
    ``n_fg_class + 4`` channels at stride 4 (layout: ``kr.detector.centernet.decode``).

    Thresholds are probabilities. The original's ``detect`` meant to apply a sigmoid to the
    class channels but sliced the batch axis instead, so its thresholds 0.5 (default) and
    0.3 (submission) were compared with raw logits. We apply the sigmoid and use the
    probabilities those logits stand for, :data:`SCORE_THRESHOLD` = 0.62 and
    :data:`SUBMISSION_SCORE_THRESHOLD` = 0.57, which keeps its behaviour and returns
    scores in ``[0, 1]`` (SPEC section 3 quirk (a)).

    Args:
        n_fg_class: Number of foreground classes (1: "character").
        width: Channel multiplier of the whole network (1.0 = the original; 0.25 trains
            in minutes on a CPU).
        score_threshold: Minimum class probability of a detection.
        nms_threshold: IoU of the NMS applied by :meth:`detect`.

    Call:
        ``x``: ``(N, 3, H, W)`` float32 images normalised by ``kr.datasets.normalize_image``,
        ``H`` and ``W`` multiples of 32.

    Returns:
        ``(N, n_fg_class + 4, H / 4, W / 4)`` raw head output (class logits, size, offset
        logits).
    """

    def __init__(self, n_fg_class: int = 1, width: float = 1.0,
                 score_threshold: float = SCORE_THRESHOLD, nms_threshold: float = NMS_THRESHOLD):
        super().__init__()
        if n_fg_class < 1:
            raise ValueError('n_fg_class must be at least 1, got {}'.format(n_fg_class))
        self.n_fg_class = n_fg_class
        self.width = width
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        bias = initial_head_bias(n_fg_class, SCORE_BIAS_INIT)
        with self.init_scope():
            self.encoder = ResNet18Encoder(width)
            c1, c2, c3, c4 = self.encoder.channels
            self.up1 = UpBlock(c4, c3)
            self.up2 = UpBlock(2 * c3, c2)
            self.up3 = UpBlock(2 * c2, c1)
            self.head = Convolution2D(2 * c1, n_output_channels(n_fg_class), 3, 1, 1,
                                      initial_bias=bias)

    def forward(self, x):
        if x.shape[2] % SIZE_MULTIPLE or x.shape[3] % SIZE_MULTIPLE:
            raise ValueError('input height and width must be multiples of {}, got {}'.format(
                SIZE_MULTIPLE, x.shape[2:]))
        s4, s8, s16, s32 = self.encoder(x)
        h = self.up1(s32)
        h = self.up2(F.concat([h, s16], axis=1))
        h = self.up3(F.concat([h, s8], axis=1))
        return self.head(F.concat([h, s4], axis=1))

    def run_network(self, x):
        """The raw head output of normalised images, in inference mode (see
        :class:`CenterNetDetection`); on the model's device."""
        x = self.device.send(x)
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return self.forward(x).array
