"""RetinaNet: a ResNet-FPN one-stage detector with the focal loss (SPEC section 11).

Lin et al., "Focal Loss for Dense Object Detection" (arXiv:1708.02002), the second seed's
RetinaNet (TF config ``ssd_resnet101_v1_fpn_shared_box_predictor_oid_512x512``): a ResNet
(:class:`kr.detector.resnet.ResNetFeatures`, 50 or 101 layers), a feature pyramid P3-P7
(Lin et al., "Feature Pyramid Networks", arXiv:1612.03144), and two subnets shared by
every level: four 3x3 convolutions with ReLU, then a 3x3 convolution to ``A x C`` class
logits (class subnet) or ``A x 4`` box deltas (box subnet), ``A`` anchors per cell
(:mod:`kr.detector.retinanet.anchors`). The page is seen at one fixed size, whole or in
patches (:class:`kr.detector.fixed_size.FixedSizeDetection`).
"""

import math

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from kr.detector.fixed_size import check_input_size
from kr.detector.fixed_size import FixedSizeDetection
from kr.detector.fixed_size import MAX_DETECTIONS
from kr.detector.fixed_size import PAGE_INPUT_SIZE
from kr.detector.fixed_size import PATCH_OVERLAP
from kr.detector.resnet import ResNetFeatures
from kr.detector.retinanet.anchors import ANCHOR_RATIOS
from kr.detector.retinanet.anchors import CHARACTER_ANCHOR_SCALE
from kr.detector.retinanet.anchors import check_levels
from kr.detector.retinanet.anchors import level_anchor_shapes
from kr.detector.retinanet.anchors import MAX_LEVEL
from kr.detector.retinanet.anchors import MIN_LEVEL
from kr.detector.retinanet.anchors import pyramid_anchors
from kr.detector.retinanet.anchors import SCALES_PER_OCTAVE
from kr.detector.retinanet.decode import decode
from kr.detector.retinanet.decode import level_shapes
from kr.functions import BatchNormalization
from kr.functions import Convolution2D
from kr.links import check_width
from kr.links import scale_channels

#: Default detection threshold, a probability: the best F1 at IoU 0.5 (0.847; 0.837 at 0.4,
#: 0.795 at 0.3) of the ``demo`` preset's model on the 30 val pages of fold 0 (printed by
#: ``benchmarks/detector_thresholds.py``). A focal-loss detector's scores run low (alpha
#: 0.25 weighs the positives down), hence a threshold well under CenterNet's 0.62.
SCORE_THRESHOLD = 0.35
#: Probability threshold of the submission (script 07): the best F1 by the competition's
#: centre-in-box rule with every label right, on the same pages (0.878; 0.863 at 0.4, 0.830
#: at 0.3).
SUBMISSION_SCORE_THRESHOLD = 0.35
#: IoU of the NMS: the paper's 0.5. The TF config's 0.6 leaves more duplicates of these
#: small, dense boxes: on the calibration pages the best F1 at IoU 0.5 was 0.834 with 0.6
#: and 0.847 with 0.5 (mAP 0.874 and 0.877).
NMS_THRESHOLD = 0.5
#: Channels of the pyramid and the subnets for ``width`` 1 (paper, TF config ``depth``).
FPN_CHANNELS = 256
#: Convolutions of each subnet before its output layer (paper; TF ``num_layers_before_predictor``).
HEAD_CONVS = 4
#: Prior probability of the foreground at the start of training (paper, section 4.1): the
#: class output's bias is ``-log((1 - PRIOR) / PRIOR)``, so the ~10^5 background anchors
#: do not swamp the first steps.
PRIOR_PROBABILITY = 0.01
#: Standard deviation of the subnets' initial weights (paper, section 4.1).
HEAD_INIT_STD = 0.01
#: Normalisation in the subnets: ``batch`` (the TF config: batch norm after each tower
#: convolution, statistics kept per level while the weights are shared), ``group`` (group
#: norm, shared by the levels) or ``none`` (the paper, with a pretrained backbone).
HEAD_NORMS = ('batch', 'group', 'none')
#: Our default: group norm. Trained from scratch, it learned two pages in 80 Adam steps
#: where the TF config's batch norm had found 84% of their boxes after 100 and no norm
#: under 1% after 40 (tests/.../test_overfit.py's setting; Wu and He report the same
#: advantage of group norm for detectors trained from scratch).
HEAD_NORM = 'group'
#: Groups of the group norm (Wu and He, arXiv:1803.08494), fewer when the channels do not
#: divide.
GROUPS = 32
#: ResNet depths of the family (the seed's config is ResNet101).
DEPTHS = (50, 101)


def prior_bias(prior: float = PRIOR_PROBABILITY) -> float:
    """The logit of ``prior``: ``-log((1 - prior) / prior)`` (-4.595 for 0.01)."""
    return -math.log((1 - prior) / prior)


class FeaturePyramid(chainer.Chain):
    """P``min_level``-P``max_level`` from the ResNet stages C2-C5.

    P``l`` for ``l <= 5`` is a 3x3 convolution of the sum of C``l``'s 1x1 lateral
    convolution and the 2x nearest upsampling of the level above (top-down path); P6 is a
    3x3 stride-2 convolution of C5 and P7 one of ReLU(P6) (the paper's choice; the TF
    feature extractor convolves P5 instead).

    Args:
        in_channels: Channels of C2, C3, C4, C5.
        channels: Channels of every level.
        min_level: Finest level (2 or 3).
        max_level: Coarsest level (5 to 7).

    Call:
        ``features``: the four stage outputs C2-C5.

    Returns:
        list of Variables P``min_level``.. P``max_level``, ``(N, channels, H / 2^l, W / 2^l)``
        (rounded up above P5).
    """

    def __init__(self, in_channels, channels: int, min_level: int = MIN_LEVEL,
                 max_level: int = MAX_LEVEL):
        super().__init__()
        check_levels(min_level, max_level)
        if max_level < 5:
            raise ValueError('the pyramid needs max_level >= 5, got {}'.format(max_level))
        self.min_level = min_level
        self.max_level = max_level
        in_channels = list(in_channels)[min_level - 2:]
        with self.init_scope():
            self.lateral = chainer.ChainList(*[Convolution2D(c, channels, 1)
                                               for c in in_channels])
            self.output = chainer.ChainList(*[Convolution2D(channels, channels, 3, 1, 1)
                                              for _ in in_channels])
            self.extra = chainer.ChainList(*[
                Convolution2D(in_channels[-1] if level == 6 else channels, channels, 3, 2, 1)
                for level in range(6, max_level + 1)])

    def forward(self, features):
        features = list(features)[self.min_level - 2:]
        h = self.lateral[-1](features[-1])
        tops = [h]
        for lateral, c in zip(reversed(self.lateral[:-1]), reversed(features[:-1])):
            h = lateral(c) + F.unpooling_2d(h, 2, outsize=c.shape[2:], cover_all=False)
            tops.append(h)
        pyramid = [conv(t) for conv, t in zip(self.output, reversed(tops))]
        h = features[-1]
        for i, conv in enumerate(self.extra):
            h = conv(F.relu(h) if i else h)
            pyramid.append(h)
        return pyramid


class Subnet(chainer.Chain):
    """One of RetinaNet's two subnets, its weights shared by the pyramid levels.

    ``HEAD_CONVS`` x (3x3 conv, normalisation, ReLU), then a 3x3 conv to ``out_channels``
    (weights N(0, 0.01), bias ``bias``).

    Args:
        channels: Channels of the pyramid levels and of the tower.
        out_channels: Output channels (``A x C`` or ``A x 4``).
        n_levels: Pyramid levels (batch norm keeps statistics per level).
        norm: One of :data:`HEAD_NORMS`.
        bias: Initial bias of the output layer.

    Call:
        ``pyramid``: list of ``(N, channels, H_l, W_l)``.

    Returns:
        list of ``(N, out_channels, H_l, W_l)`` Variables.
    """

    def __init__(self, channels: int, out_channels: int, n_levels: int,
                 norm: str = HEAD_NORM, bias: float = 0.0):
        super().__init__()
        if norm not in HEAD_NORMS:
            raise ValueError('head norm must be one of {}, got {!r}'.format(
                ', '.join(HEAD_NORMS), norm))
        self.norm = norm
        init = initializers.Normal(HEAD_INIT_STD)
        with self.init_scope():
            self.convs = chainer.ChainList(*[
                Convolution2D(channels, channels, 3, 1, 1, initialW=init,
                              nobias=norm != 'none') for _ in range(HEAD_CONVS)])
            if norm == 'batch':
                self.norms = chainer.ChainList(*[
                    chainer.ChainList(*[BatchNormalization(channels) for _ in range(n_levels)])
                    for _ in range(HEAD_CONVS)])
            elif norm == 'group':
                self.norms = chainer.ChainList(*[
                    L.GroupNormalization(math.gcd(GROUPS, channels), channels)
                    for _ in range(HEAD_CONVS)])
            self.out = Convolution2D(channels, out_channels, 3, 1, 1, initialW=init,
                                     initial_bias=initializers.Constant(bias))

    def _normalise(self, k: int, level: int, h):
        if self.norm == 'batch':
            return self.norms[k][level](h)
        if self.norm == 'group':
            return self.norms[k](h)
        return h

    def forward(self, pyramid):
        outputs = []
        for level, h in enumerate(pyramid):
            for k, conv in enumerate(self.convs):
                h = F.relu(self._normalise(k, level, conv(h)))
            outputs.append(self.out(h))
        return outputs


class RetinaNetDetection(FixedSizeDetection):
    """What a RetinaNet detector does around its network, whatever runs the network.

    Decoding (:func:`kr.detector.retinanet.decode.decode`) with the anchors of the levels'
    shapes, and everything of :class:`~kr.detector.fixed_size.FixedSizeDetection` (resize
    or patches, merge, NMS, the cap). A subclass sets the attributes listed there and
    ``min_level``, ``anchor_scale``, ``scales_per_octave``, ``anchor_ratios``, and defines
    ``run_network(x)``: ``(N, 3, S, S)`` float32 normalised images -> the output tuple of
    :class:`RetinaNetResNet` (arrays, NumPy or CuPy).
    """

    min_level = MIN_LEVEL
    anchor_scale = CHARACTER_ANCHOR_SCALE
    scales_per_octave = SCALES_PER_OCTAVE
    anchor_ratios = ANCHOR_RATIOS

    def anchor_grids(self, shapes):
        """``(H_l, W_l, stride, (A, 2) shapes)`` of the levels of ``shapes`` ``[(H_l, W_l),
        ...]`` from ``min_level`` (what :func:`kr.detector.anchors.grid_anchors` takes)."""
        return [(h, w, 2.0 ** level, level_anchor_shapes(level, self.anchor_scale,
                                                         self.scales_per_octave,
                                                         self.anchor_ratios))
                for level, (h, w) in enumerate(shapes, start=self.min_level)]

    def anchors(self, shapes, xp):
        """The anchors of the levels of ``shapes`` ``[(H_l, W_l), ...]`` from
        ``min_level``, one ``(H_l W_l A, 4)`` array per level, cached per shapes and array
        module (:func:`kr.detector.retinanet.anchors.pyramid_anchors`)."""
        cache = self.__dict__.setdefault('_anchor_cache', {})
        key = (tuple(shapes), xp.__name__)
        if key not in cache:
            cache[key] = pyramid_anchors(shapes, self.min_level, self.anchor_scale,
                                         self.scales_per_octave, self.anchor_ratios, xp)
        return cache[key]

    def decode(self, outputs, score_threshold: float):
        """Per image ``(bboxes, scores)`` in network-input pixels, at most
        ``max_detections`` (see :class:`~kr.detector.fixed_size.FixedSizeDetection`)."""
        xp = chainer.backend.get_array_module(outputs[0])
        shapes = level_shapes(outputs)
        stride = 2 ** self.min_level
        return decode(outputs, self.anchors(shapes, xp), self.n_fg_class, score_threshold,
                      self.nms_threshold, (shapes[0][0] * stride, shapes[0][1] * stride),
                      self.max_detections)


class RetinaNetResNet(RetinaNetDetection, chainer.Chain):
    """RetinaNet character detector on a ResNet50 or ResNet101 FPN.

    Args:
        n_fg_class: Number of foreground classes (1: "character").
        depth: ResNet depth, 50 or 101 (the seed's config: 101).
        width: Channel multiplier of the whole network (1.0: the standard widths, a
            256-channel pyramid; 0.25 trains on a CPU).
        input_size: Side of the square network input (a multiple of 32; the seed: 512).
        patch_fraction: Detect in square patches of this fraction of the page's shorter
            side (``None``: the whole page resized to ``input_size``, as the seed).
        anchor_scale: Anchor side over the level stride (TF config: 4).
        scales_per_octave: Anchor sides per level (TF config: 2).
        anchor_ratios: Anchor aspect ratios ``h / w``, comma-separated.
        min_level: Finest pyramid level (3: P3, stride 8).
        max_level: Coarsest pyramid level (7).
        head_norm: Normalisation in the subnets (:data:`HEAD_NORMS`).
        score_threshold: Minimum probability of a detection.
        nms_threshold: IoU of the NMS.
        max_detections: Most detections per page.
        patch_overlap: Share of a patch its neighbour covers.

    Call:
        ``x``: ``(N, 3, S, S)`` float32 images normalised by ``kr.datasets.normalize_image``,
        ``S`` a multiple of 32.

    Returns:
        tuple of ``2 L`` Variables (``L`` levels): the class logits ``(N, A * C, H_l, W_l)``
        of each level, then the box deltas ``(N, A * 4, H_l, W_l)`` of each level (layout:
        :mod:`kr.detector.retinanet.decode`).
    """

    def __init__(self, n_fg_class: int = 1, depth: int = 101, width: float = 1.0,
                 input_size: int = PAGE_INPUT_SIZE, patch_fraction: float = None,
                 anchor_scale: float = CHARACTER_ANCHOR_SCALE,
                 scales_per_octave: int = SCALES_PER_OCTAVE, anchor_ratios=ANCHOR_RATIOS,
                 min_level: int = MIN_LEVEL, max_level: int = MAX_LEVEL,
                 head_norm: str = HEAD_NORM, score_threshold: float = SCORE_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD,
                 max_detections: int = MAX_DETECTIONS, patch_overlap: float = PATCH_OVERLAP):
        super().__init__()
        if n_fg_class < 1:
            raise ValueError('n_fg_class must be at least 1, got {}'.format(n_fg_class))
        if depth not in DEPTHS:
            raise ValueError('RetinaNet depth must be one of {}, got {}'.format(
                ', '.join(str(d) for d in DEPTHS), depth))
        check_width(width)
        check_levels(min_level, max_level)
        if max_detections is None or max_detections < 1:
            raise ValueError('max_detections must be at least 1, got {}'.format(
                max_detections))
        if patch_fraction is not None and not 0 < patch_fraction <= 1:
            raise ValueError('patch fraction must be in (0, 1], got {}'.format(patch_fraction))
        self.n_fg_class = n_fg_class
        self.depth = depth
        self.width = width
        self.input_size = check_input_size(input_size)
        self.patch_fraction = patch_fraction
        self.patch_overlap = patch_overlap
        self.anchor_scale = float(anchor_scale)
        self.scales_per_octave = int(scales_per_octave)
        self.anchor_ratios = anchor_ratios
        self.min_level = min_level
        self.max_level = max_level
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_detections = int(max_detections)
        #: Anchors per cell.
        self.n_anchors = len(level_anchor_shapes(min_level, self.anchor_scale,
                                                 self.scales_per_octave, anchor_ratios))
        channels = scale_channels(FPN_CHANNELS, width)
        n_levels = max_level - min_level + 1
        with self.init_scope():
            self.extractor = ResNetFeatures(depth, width)
            self.fpn = FeaturePyramid(self.extractor.channels, channels, min_level, max_level)
            self.cls_subnet = Subnet(channels, self.n_anchors * n_fg_class, n_levels,
                                     head_norm, prior_bias())
            self.box_subnet = Subnet(channels, self.n_anchors * 4, n_levels, head_norm)

    def forward(self, x):
        if x.shape[2] % self.size_multiple or x.shape[3] % self.size_multiple:
            raise ValueError('input height and width must be multiples of {}, got {}'.format(
                self.size_multiple, x.shape[2:]))
        pyramid = self.fpn(self.extractor(x))
        return tuple(self.cls_subnet(pyramid)) + tuple(self.box_subnet(pyramid))

    def run_network(self, x):
        """The raw output tuple of normalised images, in inference mode, as arrays on the
        model's device (see :class:`RetinaNetDetection`)."""
        x = self.device.send(x)
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return tuple(y.array for y in self.forward(x))
