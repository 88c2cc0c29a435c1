import numpy as np
import pytest

from kr.detector.anchors import anchor_shapes
from kr.detector.anchors import grid_anchors
from kr.detector.anchors import IGNORED
from kr.detector.anchors import match_anchors
from kr.detector.anchors import match_grid_anchors as match_grids
from kr.detector.anchors import NEGATIVE
from kr.detector.anchors import POSITIVE
from kr.detector.box_coder import encode_boxes
from kr.detector.box_coder import TF_OD_WEIGHTS
from kr.detector.faster_rcnn.targets import anchor_targets
from kr.detector.faster_rcnn.targets import create_proposals
from kr.detector.faster_rcnn.targets import proposal_targets

#: One level of 8 x 8 anchors at stride 8 on a 32 x 32 input: anchor ``4 y + x`` is
#: ``[8x, 8y, 8x + 8, 8y + 8]``.
LEVELS = [(8, anchor_shapes([8], [1]), 4, 4)]
ANCHORS = grid_anchors(4, 4, 8, anchor_shapes([8], [1]))
#: Box 0 is anchor 5 exactly; box 1 has IoU 0.7 with anchor 2 (56 / 80); box 2 straddles
#: anchors 12 and 13 (IoU 1/3 with each: both are its best, so both positive).
BOXES = np.array([[8, 8, 16, 16], [17, 0, 25, 9], [4, 24, 12, 32]], np.float32)


def match_grid_anchors(anchors, levels, boxes, positive_iou=0.7, negative_iou=0.3):
    """The shared grid matcher with the RPN's thresholds, on this family's level layout
    ``(stride, shapes, height, width)``."""
    return match_grids(anchors, [(h, w, st, sh) for st, sh, h, w in levels], boxes,
                       positive_iou, negative_iou)


def test_match_grid_anchors_on_hand_made_boxes():
    index, label = match_grid_anchors(ANCHORS, LEVELS, BOXES)
    assert np.flatnonzero(label == POSITIVE).tolist() == [2, 5, 12, 13]
    assert index[[2, 5, 12, 13]].tolist() == [1, 0, 2, 2]
    assert (label[label != POSITIVE] == NEGATIVE).all()
    assert (index[label == NEGATIVE] == -1).all()


@pytest.mark.parametrize('size,seed', [(64, 0), (128, 1), (128, 2)])
def test_match_grid_anchors_equals_the_dense_matching(size, seed):
    rng = np.random.RandomState(seed)
    levels = [(stride, anchor_shapes([s], [0.5, 1, 2]), size // stride, size // stride)
              for s, stride in zip((8, 16, 32, 64), (4, 8, 16, 32))]
    anchors = np.concatenate([grid_anchors(h, w, st, sh) for st, sh, h, w in levels])
    xy = rng.uniform(-10, size, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(3, 50, (60, 2))], axis=1).astype(np.float32)
    boxes[1] = boxes[0]  # a duplicate: every tie goes to the last box, as match_anchors does
    expected = match_anchors(anchors, boxes, 0.7, 0.3)
    got = match_grid_anchors(anchors, levels, boxes, 0.7, 0.3)
    assert (got[0] == expected[0]).all() and (got[1] == expected[1]).all()
    # The case is not trivial: many positives, ignored anchors, low-quality matches.
    assert (got[1] == POSITIVE).sum() > 30 and (got[1] == IGNORED).sum() > 30


def test_match_grid_anchors_checks_its_inputs():
    assert (match_grid_anchors(ANCHORS, LEVELS, np.zeros((0, 4)))[1] == NEGATIVE).all()
    with pytest.raises(ValueError, match='the level grids hold 4 anchors, not 16'):
        match_grid_anchors(ANCHORS, [(8, anchor_shapes([8], [1]), 2, 2)], BOXES)
    with pytest.raises(ValueError, match='must not exceed'):
        match_grid_anchors(ANCHORS, LEVELS, BOXES, 0.3, 0.7)


def test_anchor_targets_labels_and_exact_regression_targets():
    np.random.seed(0)
    labels, targets = anchor_targets(ANCHORS, LEVELS, BOXES)
    assert labels.dtype == np.int32 and targets.shape == (16, 4)
    assert np.flatnonzero(labels == POSITIVE).tolist() == [2, 5, 12, 13]
    assert (labels != IGNORED).all()  # 16 anchors < 256: all sampled
    np.testing.assert_array_equal(targets[5], [0, 0, 0, 0])
    # Box 1 [17, 0, 25, 9] on anchor [16, 0, 24, 8]: centre (21, 4.5) vs (20, 4), 8 x 9 vs 8.
    np.testing.assert_allclose(targets[2], [10 * 1 / 8, 10 * 0.5 / 8, 0, 5 * np.log(9 / 8)],
                               rtol=1e-6)
    # Box 2 [4, 24, 12, 32] on anchor 12 [0, 24, 8, 32]: shifted by half a width.
    np.testing.assert_allclose(targets[12], [10 * 0.5, 0, 0, 0], rtol=1e-6)
    assert (targets[labels != POSITIVE] == 0).all()


def test_anchor_targets_sampling_counts():
    np.random.seed(0)
    labels, _ = anchor_targets(ANCHORS, LEVELS, BOXES, batchsize=4, positive_fraction=0.5)
    assert (labels == POSITIVE).sum() == 2 and (labels == NEGATIVE).sum() == 2
    assert (labels == IGNORED).sum() == 12
    labels, _ = anchor_targets(ANCHORS, LEVELS, BOXES, batchsize=8, positive_fraction=0.25)
    assert (labels == POSITIVE).sum() == 2 and (labels == NEGATIVE).sum() == 6
    labels, targets = anchor_targets(ANCHORS, LEVELS, np.zeros((0, 4), np.float32),
                                     batchsize=5)
    assert (labels == NEGATIVE).sum() == 5 and (labels == IGNORED).sum() == 11
    assert (targets == 0).all()


def test_create_proposals_clips_drops_ranks_and_suppresses():
    anchors = np.array([[0, 0, 10, 10], [0.5, 0.5, 10.5, 10.5], [20, 20, 30, 30],
                        [40, 40, 41, 41], [-5, -5, 5, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.6], np.float32)
    deltas = np.zeros((5, 4), np.float32)
    # Anchor 3 is clipped to nothing, 4 to [0, 0, 5, 5]; 1 overlaps 0 by IoU 0.82 > 0.7.
    got = create_proposals(anchors, scores, deltas, 32, pre_nms=10, post_nms=10)
    np.testing.assert_array_equal(got, [[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    assert len(create_proposals(anchors, scores, deltas, 32, 10, post_nms=2)) == 2
    # Only the two best anchors are ranked: the first is dropped as too small.
    np.testing.assert_array_equal(create_proposals(anchors, scores, deltas, 32, 2, 10),
                                  [[0, 0, 10, 10]])
    deltas[0] = [10, 0, 0, 0]  # dx = 1 (weights 10): one width to the right
    np.testing.assert_allclose(create_proposals(anchors[:1], scores[:1], deltas[:1], 32,
                                                10, 10), [[10, 0, 20, 10]], rtol=1e-6)


def test_proposal_targets_on_hand_made_rois():
    np.random.seed(0)
    gt = np.array([[0, 0, 10, 10]], np.float32)
    rois = np.array([[1, 0, 11, 10],      # IoU 90 / 110 = 0.82: a character
                     [5, 0, 15, 10],      # IoU 1/3: background
                     [20, 20, 30, 30]],   # background
                    np.float32)
    sampled, labels, targets = proposal_targets(rois, gt, batchsize=8, positive_fraction=0.5)
    assert labels.tolist() == [1, 1, 0, 0]  # characters first: the RoI and the box itself
    assert sorted(map(tuple, sampled[:2].tolist())) == [(0, 0, 10, 10), (1, 0, 11, 10)]
    assert sorted(map(tuple, sampled[2:].tolist())) == [(5, 0, 15, 10), (20, 20, 30, 30)]
    for roi, target in zip(sampled[:2], targets[:2]):
        expected = [-1, 0, 0, 0] if roi[0] == 1 else [0, 0, 0, 0]
        np.testing.assert_allclose(target, expected, atol=1e-6)
    np.testing.assert_array_equal(targets[2:], 0)
    np.testing.assert_allclose(
        targets[:2], encode_boxes(sampled[:2], np.repeat(gt, 2, axis=0), TF_OD_WEIGHTS))


def test_proposal_targets_counts():
    np.random.seed(0)
    gt = np.array([[0, 0, 10, 10], [40, 0, 50, 10]], np.float32)
    rois = np.concatenate([gt + [k * 0.1, 0, k * 0.1, 0] for k in range(10)]
                          + [gt + [0, 20, 0, 20]])
    _, labels, _ = proposal_targets(rois, gt, batchsize=8, positive_fraction=0.25)
    # 22 characters (20 shifted copies and the 2 boxes), 2 background RoIs: 2 characters
    # (a quarter of 8) and the 2 background ones.
    assert labels.tolist() == [1, 1, 0, 0]
    _, labels, _ = proposal_targets(rois[:4], np.zeros((0, 4), np.float32), batchsize=3)
    assert labels.tolist() == [0, 0, 0]
