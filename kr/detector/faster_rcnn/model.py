"""Faster R-CNN character detector: ResNet-FPN, region proposal network, RoIAlign box head.

Ren et al., "Faster R-CNN", arXiv:1506.01497, with the feature pyramid of Lin et al.,
"Feature Pyramid Networks for Object Detection", arXiv:1612.03144 (the layout of
chainercv's ``FasterRCNNFPNResNet``; SPEC section 11). The seed's own config
(``faster_rcnn_resnet101``) is the C4 variant: one stride-16 feature map for the RPN and
the RoIs, the fifth ResNet stage run on every RoI as the box head. We use FPN instead,
because at 512 x 512 a character is 8-20 px high (SPEC section 11): on a stride-16 map it is
one cell or less, and two characters stacked in a column fall in the same cell, so the RPN
cannot propose both; the pyramid's stride-4 level P2 has a cell per 4 px. The two-layer
box head is also far cheaper on a CPU than the fifth stage run on hundreds of RoIs.

* Backbone: :class:`kr.detector.resnet.ResNetFeatures` (ResNet101; ResNet50 by ``depth``)
  -> C2-C5; 1x1 laterals, nearest-neighbour top-down additions and 3x3 convolutions ->
  P2-P5 at strides 4, 8, 16, 32 (no P6: anchors of 128 px and more would serve no
  character at this input size).
* RPN: a 3x3 convolution + ReLU shared by the levels, then 1x1 convolutions to one
  objectness logit and four box deltas per anchor; one anchor size per level (default 8,
  16, 32, 64 px), ratios ``h / w`` 0.5 / 1 / 2 (the TF config's set).
* Box head: each RoI is pooled 7x7 (RoIAlign, :mod:`kr.detector.faster_rcnn.roi_align`)
  from the level whose anchors have its size, then two fully connected layers of 1,024
  and a 2-way classifier (background, character) and a 4-value box regression.
* Inference: the best 6,000 anchors, NMS 0.7 and 2,000 proposals per image (TF keeps 300),
  the head's character probability and refined box, NMS 0.6 (TF's second stage) and at
  most 1,200 detections (TF: 300; the competition allows 1,200 per page).
"""

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
from chainer import initializers

from kr.detector.anchors import anchor_shapes
from kr.detector.anchors import grid_anchors
from kr.detector.box_coder import decode_boxes
from kr.detector.box_coder import TF_OD_WEIGHTS
from kr.detector.faster_rcnn.roi_align import roi_align_2d
from kr.detector.faster_rcnn.targets import create_proposals
from kr.detector.faster_rcnn.targets import POST_NMS_TEST
from kr.detector.faster_rcnn.targets import PRE_NMS_TEST
from kr.detector.fixed_size import check_input_size
from kr.detector.fixed_size import FixedSizeDetection
from kr.detector.fixed_size import MAX_DETECTIONS
from kr.detector.fixed_size import PAGE_INPUT_SIZE
from kr.detector.nms import non_maximum_suppression
from kr.detector.resnet import FEATURE_STRIDES
from kr.detector.resnet import ResNetFeatures
from kr.functions import Convolution2D
from kr.links import check_width
from kr.links import scale_channels

#: Anchor side of each pyramid level P2-P5 (input pixels): about twice the stride, so
#: that a character of 8-20 px (the whole page at 512 x 512) is matched at P2 / P3 and
#: one of 25-65 px (a patch of half the page) at P4 / P5.
ANCHOR_SIZES = '8,16,32,64'
#: Anchor aspect ratios ``h / w`` (the TF config's 0.5, 1, 2).
ANCHOR_RATIOS = '0.5,1,2'
#: Channels of the pyramid levels and of the box head's hidden layers (FPN paper).
FPN_CHANNELS = 256
HEAD_CHANNELS = 1024
#: Side of the RoIAlign grid (Mask R-CNN's 7x7 for the box head).
ROI_SIZE = 7
#: IoU of the second-stage NMS (TF ``second_stage_post_processing`` ``iou_threshold``).
NMS_THRESHOLD = 0.6
#: Detections under this character probability are never returned (they could not change
#: any threshold a user would pick; the mAP during training scores from 0.05).
MIN_SCORE = 0.01
#: Calibrated detection thresholds (``DETECTORS['faster_rcnn']``): the character
#: probability with the best detection F1 (box centres in boxes, label-free) on 20 val pages
#: of the demo data after the ``demo`` preset's run (the centre F1 of
#: ``benchmarks/detector_thresholds.py``): 0.527 at 0.7 (0.524 at 0.8, 0.449 at 0.6). The
#: submission uses the same: the classifier rejects no box, so the detection F1 is what
#: the threshold trades. Recalibrate on a full run: that model is far from trained.
SCORE_THRESHOLD = 0.7
SUBMISSION_SCORE_THRESHOLD = 0.7
#: Standard deviation of the RPN's and the classifier's initial weights, and of the box
#: regression's (Faster R-CNN's 0.01 / 0.001).
INIT_STD = 0.01
LOC_INIT_STD = 0.001


def parse_values(value, name: str):
    """A tuple of positive floats from ``'8,16,32'`` or a sequence of numbers.

    Raises:
        ValueError: Anything else (naming ``name``).
    """
    try:
        if isinstance(value, str):
            values = tuple(float(v) for v in value.split(',') if v.strip())
        else:
            values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError('{} must be comma-separated numbers, got {!r}'.format(name, value))
    if not values or any(not v > 0 for v in values):
        raise ValueError('{} must be positive numbers, got {!r}'.format(name, value))
    return values


class FeaturePyramid(chainer.Chain):
    """ResNet C2-C5 -> FPN levels P2-P5 with ``channels`` channels each.

    Args:
        depth: ResNet depth (50, 101, ...).
        width: Channel multiplier of the ResNet.
        channels: Channels of every level.

    Call: ``(N, 3, S, S)`` normalised images -> list of four ``(N, channels, S / s, S / s)``
    Variables, ``s`` = 4, 8, 16, 32.
    """

    def __init__(self, depth: int, width: float, channels: int):
        super().__init__()
        with self.init_scope():
            self.resnet = ResNetFeatures(depth, width)
            self.lateral = chainer.ChainList(*[
                Convolution2D(c, channels, 1, initialW=initializers.HeNormal())
                for c in self.resnet.channels])
            self.smooth = chainer.ChainList(*[
                Convolution2D(channels, channels, 3, 1, 1, initialW=initializers.HeNormal())
                for _ in self.resnet.channels])

    def forward(self, x):
        features = self.resnet(x)
        h = self.lateral[-1](features[-1])
        levels = [h]
        for lateral, c in zip(list(self.lateral)[-2::-1], features[-2::-1]):
            h = F.unpooling_2d(h, 2, cover_all=False, outsize=c.shape[2:]) + lateral(c)
            levels.insert(0, h)
        return [smooth(p) for smooth, p in zip(self.smooth, levels)]


class RegionProposalNetwork(chainer.Chain):
    """The RPN head shared by the pyramid levels.

    Args:
        channels: Channels of the levels.
        n_anchors: Anchors per cell.

    Call: the list of levels -> ``(scores (N, R), locs (N, R, 4))`` Variables over the
    anchors of all levels, level by level, each in :func:`~kr.detector.anchors.
    grid_anchors` order.
    """

    def __init__(self, channels: int, n_anchors: int):
        super().__init__()
        self.n_anchors = n_anchors
        init = initializers.Normal(INIT_STD)
        with self.init_scope():
            self.conv = Convolution2D(channels, channels, 3, 1, 1, initialW=init)
            self.score = Convolution2D(channels, n_anchors, 1, initialW=init)
            self.loc = Convolution2D(channels, 4 * n_anchors, 1, initialW=init)

    def forward(self, levels):
        scores, locs = [], []
        for p in levels:
            h = F.relu(self.conv(p))
            n = len(h)
            scores.append(F.reshape(F.transpose(self.score(h), (0, 2, 3, 1)), (n, -1)))
            locs.append(F.reshape(F.transpose(self.loc(h), (0, 2, 3, 1)), (n, -1, 4)))
        return F.concat(scores, axis=1), F.concat(locs, axis=1)


class BoxHead(chainer.Chain):
    """RoIAlign from each RoI's level, two fully connected layers, class logits and boxes.

    Args:
        channels: Channels of the levels.
        hidden: Units of the two hidden layers.
        strides: Stride of each level.
        canonical_size: RoI side pooled from the first level; each doubling moves one
            level up (the FPN paper's rule ``floor(k0 + log2(sqrt(wh) / 224))``, anchored
            at our anchor sizes instead of ImageNet's 224).
        n_class: Classes including the background (2).

    Call: ``(levels, rois (R, 4) xyxy, roi_indices (R,))`` -> ``(cls (R, n_class),
    locs (R, 4 (n_class - 1)))`` Variables.
    """

    def __init__(self, channels: int, hidden: int, strides, canonical_size: float,
                 n_class: int = 2):
        super().__init__()
        self.strides = tuple(strides)
        self.canonical_size = canonical_size
        with self.init_scope():
            self.fc1 = L.Linear(channels * ROI_SIZE * ROI_SIZE, hidden)
            self.fc2 = L.Linear(hidden, hidden)
            self.cls = L.Linear(hidden, n_class, initialW=initializers.Normal(INIT_STD))
            self.loc = L.Linear(hidden, 4 * (n_class - 1),
                                initialW=initializers.Normal(LOC_INIT_STD))

    def levels_of(self, rois):
        """Pyramid level index (0 = P2) of each RoI."""
        xp = chainer.backend.get_array_module(rois)
        side = xp.sqrt(xp.maximum((rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1]),
                                  1e-6))
        level = xp.floor(xp.log2(side / self.canonical_size))
        return xp.clip(level, 0, len(self.strides) - 1).astype(np.int32)

    def forward(self, levels, rois, roi_indices):
        xp = chainer.backend.get_array_module(rois)
        level = self.levels_of(rois)
        yxyx = rois[:, [1, 0, 3, 2]]
        pooled, order = [], []
        for k, (p, stride) in enumerate(zip(levels, self.strides)):
            chosen = xp.nonzero(level == k)[0]
            if len(chosen) == 0:
                continue
            pooled.append(roi_align_2d(p, yxyx[chosen], roi_indices[chosen], ROI_SIZE,
                                       1.0 / stride))
            order.append(chosen)
        h = F.concat(pooled, axis=0) if len(pooled) > 1 else pooled[0]
        h = F.permutate(h, xp.concatenate(order).astype(np.int32), inv=True)
        h = F.relu(self.fc1(h))
        h = F.relu(self.fc2(h))
        return self.cls(h), self.loc(h)


class FasterRCNNDetection(FixedSizeDetection):
    """What a Faster R-CNN detector does around its network (see
    :class:`~kr.detector.fixed_size.FixedSizeDetection`): :meth:`run_network` returns the
    detections of each window after the second-stage NMS and cap, padded to one array;
    :meth:`decode` applies the score threshold.
    """

    def decode(self, outputs, score_threshold: float):
        """``(bboxes (N, K, 4), scores (N, K), counts (N,))`` -> per image ``(bboxes,
        scores)`` with a score of at least ``score_threshold``, highest first."""
        bboxes, scores, counts = outputs
        found = []
        for b, s, n in zip(bboxes, scores, chainer.backend.CpuDevice().send(counts)):
            b, s = b[:int(n)], s[:int(n)]
            keep = s >= score_threshold
            found.append((b[keep], s[keep]))
        return found


class FasterRCNNFPNResNet(FasterRCNNDetection, chainer.Chain):
    """Faster R-CNN with a ResNet-FPN backbone: the character detector of the second seed.

    Args:
        depth: ResNet depth: 101 (the seed's config) or 50.
        width: Channel multiplier of every layer (1.0 = the standard network).
        input_size: Side of the square network input (the seed's 512).
        patch_fraction: Detect in square patches of this fraction of the page's shorter
            side (``None``: the whole page resized, as the seed).
        anchor_sizes: Anchor side per pyramid level P2-P5 (four comma-separated numbers
            or a sequence).
        anchor_ratios: Anchor aspect ratios ``h / w``.
        score_threshold: Default minimum character probability of a detection.
        nms_threshold: IoU of the second-stage NMS (and of merging patches).
        max_detections: Most detections per page.
        pre_nms: Proposals ranked before the RPN's NMS, at test time.
        post_nms: Proposals kept after it, at test time.

    Call:
        ``x``: ``(N, 3, S, S)`` float32 normalised images (``S`` a multiple of 32).

    Returns:
        tuple ``(levels, scores, locs)``: the pyramid (list of Variables) and the RPN's
        ``(N, R)`` objectness logits and ``(N, R, 4)`` deltas over :meth:`anchors`.
    """

    def __init__(self, depth: int = 101, width: float = 1.0,
                 input_size: int = PAGE_INPUT_SIZE, patch_fraction: float = None,
                 anchor_sizes=ANCHOR_SIZES, anchor_ratios=ANCHOR_RATIOS,
                 score_threshold: float = SCORE_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD, max_detections: int = MAX_DETECTIONS,
                 pre_nms: int = PRE_NMS_TEST, post_nms: int = POST_NMS_TEST):
        super().__init__()
        check_width(width)
        self.depth = depth
        self.width = width
        self.input_size = check_input_size(input_size)
        if patch_fraction is not None and not 0 < patch_fraction <= 1:
            raise ValueError('patch_fraction must be in (0, 1], got {}'.format(patch_fraction))
        self.patch_fraction = patch_fraction
        self.anchor_sizes = parse_values(anchor_sizes, 'anchor_sizes')
        self.anchor_ratios = parse_values(anchor_ratios, 'anchor_ratios')
        if len(self.anchor_sizes) != len(FEATURE_STRIDES):
            raise ValueError('anchor_sizes needs one size per pyramid level P2-P5 ({}), got '
                             '{!r}'.format(len(FEATURE_STRIDES), anchor_sizes))
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_detections = max_detections
        self.pre_nms = pre_nms
        self.post_nms = post_nms
        self._anchors = {}
        channels = scale_channels(FPN_CHANNELS, width)
        with self.init_scope():
            self.extractor = FeaturePyramid(depth, width, channels)
            self.rpn = RegionProposalNetwork(channels, len(self.anchor_ratios))
            self.head = BoxHead(channels, scale_channels(HEAD_CHANNELS, width),
                                FEATURE_STRIDES, self.anchor_sizes[0])

    def anchor_levels(self, size: int):
        """The anchor grid of an ``size x size`` input: per level ``(stride, shapes,
        height, width)`` (the arguments of :func:`~kr.detector.anchors.grid_anchors`)."""
        return [(stride, anchor_shapes([s], self.anchor_ratios), size // stride,
                 size // stride) for s, stride in zip(self.anchor_sizes, FEATURE_STRIDES)]

    def anchors(self, size: int):
        """``(R, 4)`` anchors of an ``size x size`` input, in the order of the RPN outputs
        (on the model's device)."""
        xp = self.xp
        key = (size, xp.__name__)
        if key not in self._anchors:
            self._anchors[key] = xp.concatenate([
                grid_anchors(h, w, stride, shapes, xp)
                for stride, shapes, h, w in self.anchor_levels(size)])
        return self._anchors[key]

    def forward(self, x):
        if x.shape[2] != x.shape[3] or x.shape[2] % self.size_multiple:
            raise ValueError('input must be square with a side that is a multiple of {}, got '
                             '{}'.format(self.size_multiple, x.shape[2:]))
        levels = self.extractor(x)
        scores, locs = self.rpn(levels)
        return levels, scores, locs

    def propose(self, scores, locs, size: int, pre_nms: int = None, post_nms: int = None):
        """Proposals of each image from the RPN outputs (arrays): a list of ``(K_i, 4)``
        (``pre_nms``, ``post_nms``: default the model's test-time counts)."""
        pre = self.pre_nms if pre_nms is None else pre_nms
        post = self.post_nms if post_nms is None else post_nms
        anchors = self.anchors(size)
        return [create_proposals(anchors, s, d, size, pre, post)
                for s, d in zip(scores, locs)]

    def run_network(self, x):
        """Detections of normalised images, in inference mode: ``(bboxes (N, K, 4), scores
        (N, K), counts (N,))`` in input pixels, each image's first ``counts[i]`` rows
        valid, highest score first, after the second-stage NMS and the cap."""
        x = self.device.send(x)
        xp = self.xp
        size = x.shape[2]
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            levels, scores, locs = self.forward(x)
            rois = self.propose(scores.array, locs.array, size)
            indices = xp.concatenate([xp.full(len(r), i, dtype=np.int32)
                                      for i, r in enumerate(rois)])
            all_rois = xp.concatenate(rois)
            if len(all_rois):
                cls, loc = self.head(levels, all_rois, indices)
                prob = F.softmax(cls).array[:, 1]
                boxes = xp.clip(decode_boxes(all_rois, loc.array, TF_OD_WEIGHTS), 0, size)
        found = []
        for i in range(len(x)):
            if not len(all_rois):
                found.append((xp.zeros((0, 4), np.float32), xp.zeros(0, np.float32)))
                continue
            mine = xp.nonzero((indices == i) & (prob >= MIN_SCORE))[0]
            keep = non_maximum_suppression(boxes[mine], self.nms_threshold, prob[mine],
                                           limit=self.max_detections)
            found.append((boxes[mine][keep], prob[mine][keep]))
        k = max([len(s) for _, s in found] + [1])
        bboxes = xp.zeros((len(x), k, 4), dtype=np.float32)
        probs = xp.full((len(x), k), -1, dtype=np.float32)
        for i, (b, s) in enumerate(found):
            bboxes[i, :len(s)] = b
            probs[i, :len(s)] = s
        counts = np.array([len(s) for _, s in found], dtype=np.int32)
        return bboxes, probs, counts
