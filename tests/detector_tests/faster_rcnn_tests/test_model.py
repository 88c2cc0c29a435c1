import chainer
import numpy as np
import pytest

from kr.detector.faster_rcnn.model import BoxHead
from kr.detector.faster_rcnn.model import FasterRCNNFPNResNet
from kr.detector.faster_rcnn.model import parse_values
from kr.detector.faster_rcnn.model import ROI_SIZE
from kr.detector.fixed_size import MAX_DETECTIONS


def _model(**kwargs):
    np.random.seed(0)
    return FasterRCNNFPNResNet(**dict(dict(depth=50, width=0.125, input_size=64), **kwargs))


def _images(n=2, size=64, seed=0):
    return np.random.RandomState(seed).randn(n, 3, size, size).astype(np.float32)


def test_pyramid_and_rpn_output_shapes():
    model = _model()
    with chainer.using_config('train', False):
        levels, scores, locs = model(_images())
    channels = model.extractor.lateral[0].out_channels
    assert [p.shape for p in levels] == [(2, channels, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    # 3 anchors per cell on 16^2 + 8^2 + 4^2 + 2^2 cells.
    n_anchors = 3 * (256 + 64 + 16 + 4)
    assert scores.shape == (2, n_anchors) and locs.shape == (2, n_anchors, 4)
    assert model.anchors(64).shape == (n_anchors, 4)


def test_anchor_order_matches_the_rpn_output():
    model = _model()
    anchors = model.anchors(64)
    # Level P3 starts after P2's 16 x 16 x 3 anchors; its cell (1, 2) holds rows 3 * 10 +
    # 0..2, centred on (2.5 * 8, 1.5 * 8), of sizes 16 / sqrt(r) x 16 sqrt(r).
    p3 = anchors[768 + 3 * (1 * 8 + 2):768 + 3 * (1 * 8 + 2) + 3]
    np.testing.assert_allclose((p3[:, :2] + p3[:, 2:]) / 2, [[20, 12]] * 3)
    np.testing.assert_allclose(p3[:, 2] - p3[:, 0], 16 / np.sqrt([0.5, 1, 2]), rtol=1e-6)
    np.testing.assert_allclose(p3[:, 3] - p3[:, 1], 16 * np.sqrt([0.5, 1, 2]), rtol=1e-6)


def test_box_head_shapes_and_levels():
    model = _model()
    head = model.head
    rois = np.array([[0, 0, 8, 8], [0, 0, 15, 15], [4, 4, 36, 36], [0, 0, 64, 64],
                     [10, 10, 11, 11]], np.float32)
    # Side < 16: P2; 16-32: P3; 32-64: P4; 64 and more: P5 (clipped).
    assert head.levels_of(rois).tolist() == [0, 0, 2, 3, 0]
    with chainer.using_config('train', False):
        levels, _, _ = model(_images())
        cls, loc = head(levels, rois, np.array([0, 1, 0, 1, 1], np.int32))
    assert cls.shape == (5, 2) and loc.shape == (5, 4)
    assert head.fc1.W.shape[1] == levels[0].shape[1] * ROI_SIZE * ROI_SIZE
    # The same RoI pooled from another image gives other features.
    with chainer.using_config('train', False):
        again, _ = head(levels, rois[:1], np.array([1], np.int32))
    assert not np.allclose(again.array, cls.array[:1])


def test_box_head_rule_follows_the_first_anchor_size():
    head = BoxHead(8, 16, (4, 8, 16, 32), canonical_size=16)
    rois = np.array([[0, 0, 15, 15], [0, 0, 16, 16], [0, 0, 40, 40]], np.float32)
    assert head.levels_of(rois).tolist() == [0, 0, 1]


def _saturated(model):
    """Every anchor an equally good proposal and every RoI a sure character."""
    for link in (model.rpn.score, model.rpn.loc, model.head.loc):
        link.W.array[:] = 0
        link.b.array[:] = 0
    model.head.cls.W.array[:] = 0
    model.head.cls.b.array[:] = [0, 10]
    return model


def test_detection_cap():
    # 2,000 proposals survive the RPN's NMS (8 px anchors 4 px apart: IoU 1/3), all score
    # 0.99995 and none overlaps another by 0.6: only the cap stops them.
    model = _saturated(_model(input_size=512))
    page = np.full((512, 512, 3), 255, np.uint8)
    bboxes, scores = model.detect(page, score_threshold=0.5)
    assert len(bboxes) == MAX_DETECTIONS == 1200
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-10)), rtol=1e-6)
    model.max_detections = 300
    outputs = model.run_network(_images(1, 512))
    assert outputs[2].tolist() == [300] and outputs[0].shape == (1, 300, 4)
    assert len(model.decode(outputs, 0.5)[0][0]) == 300
    # Above the threshold nothing is left.
    assert len(model.decode(outputs, 0.99999)[0][0]) == 0


def test_detect_returns_page_pixels_with_patches():
    model = _saturated(_model(input_size=64, patch_fraction=0.5, pre_nms=200, post_nms=100))
    model.max_detections = 50
    page = np.full((200, 120, 3), 255, np.uint8)
    bboxes, scores = model.detect(page, score_threshold=0.5)
    assert bboxes.dtype == np.float32 and scores.shape == (len(bboxes),) and len(bboxes) == 50
    assert bboxes[:, [0, 2]].max() <= 120 and bboxes[:, [1, 3]].max() <= 200
    assert bboxes.min() >= 0


def test_settings_are_checked():
    assert parse_values('8, 16,32', 'x') == (8.0, 16.0, 32.0)
    assert parse_values([1, 2], 'x') == (1.0, 2.0)
    with pytest.raises(ValueError, match="anchor_sizes must be comma-separated numbers, got 'a'"):
        _model(anchor_sizes='a')
    with pytest.raises(ValueError, match='anchor_ratios must be positive'):
        _model(anchor_ratios='1,-2')
    with pytest.raises(ValueError, match='one size per pyramid level P2-P5'):
        _model(anchor_sizes='8,16')
    with pytest.raises(ValueError, match='multiple of 32'):
        _model(input_size=100)
    with pytest.raises(ValueError, match='patch_fraction must be in'):
        _model(patch_fraction=1.5)
    with pytest.raises(ValueError, match='must be square'):
        _model()(_images(1, 64)[:, :, :32])
