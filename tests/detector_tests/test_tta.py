import numpy as np
import pytest

from kr.detector.tta import AdaptiveScaleDetector
from kr.detector.tta import bbox_voting
from kr.detector.tta import MultiScaleDetector
from kr.detector.tta import ScaledDetector


def test_voting_hand_made():
    bboxes = np.array([[0, 0, 10, 10],     # base of a group of three
                       [1, 1, 11, 11],     # IoU 81/119 = 0.68 with 0: votes
                       [0, 0, 10, 12],     # IoU 100/120 = 0.83: votes
                       [50, 50, 60, 60]],  # alone
                      np.float32)
    scores = np.array([0.9, 0.6, 0.3, 0.5], np.float32)
    voted, voted_scores = bbox_voting(bboxes, scores)
    assert voted.dtype == np.float32 and voted_scores.dtype == np.float32
    expected = (0.9 * bboxes[0] + 0.6 * bboxes[1] + 0.3 * bboxes[2]) / 1.8
    np.testing.assert_allclose(voted, [expected, bboxes[3]], rtol=1e-6)
    np.testing.assert_allclose(voted_scores, [0.6, 0.5], rtol=1e-6)


def test_voting_members_need_iou_half_and_bases_need_iou_03():
    bboxes = np.array([[0, 0, 10, 10], [0, 0, 10, 16], [0, 0, 10, 30]], np.float32)
    scores = np.array([0.8, 0.4, 0.2], np.float32)
    # IoU(0, 1) = 0.625 -> votes for 0; IoU(0, 2) = 0.33 -> suppressed as a base (>= 0.3)
    # but no vote (< 0.5); IoU(1, 2) = 0.53 does not matter, 1 is not a base.
    voted, voted_scores = bbox_voting(bboxes, scores)
    np.testing.assert_allclose(voted, [(0.8 * bboxes[0] + 0.4 * bboxes[1]) / 1.2], rtol=1e-6)
    np.testing.assert_allclose(voted_scores, [0.6], rtol=1e-6)


def test_voting_empty_and_zero_scores():
    voted, scores = bbox_voting(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    assert voted.shape == (0, 4) and scores.shape == (0,)
    voted, scores = bbox_voting(np.array([[0, 0, 10, 10], [0, 0, 10, 11]], np.float32),
                                np.zeros(2, np.float32))
    np.testing.assert_allclose(voted, [[0, 0, 10, 10.5]])
    np.testing.assert_allclose(scores, [0])


@pytest.mark.gpu
def test_voting_gpu():
    import cupy
    bboxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6, 0.5], np.float32)
    expected = bbox_voting(bboxes, scores)
    got = bbox_voting(cupy.asarray(bboxes), cupy.asarray(scores))
    for e, g in zip(expected, got):
        np.testing.assert_allclose(cupy.asnumpy(g), e, rtol=1e-6)


class _FakeDetector:
    """Detects one character whose size in network pixels is ``char_px`` at ``min_side``
    832 (scaled with the page), and records the calls."""

    min_side = 832

    def __init__(self, char_px=None):
        self.char_px = char_px
        self.calls = []

    def detect(self, image, min_side=832, score_threshold=None):
        self.calls.append((min_side, score_threshold))
        if self.char_px is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        h, w = image.shape[:2]
        side = self.char_px * min(h, w) / 832  # page pixels
        box = np.array([[10, 10, 10 + side, 10 + side]], np.float32)
        return box, np.array([0.9], np.float32)


def test_scaled_detector_passes_the_scale():
    inner = _FakeDetector(20)
    ScaledDetector(inner, None).detect(np.zeros((10, 10, 3), np.uint8), score_threshold=0.1)
    assert inner.calls == [(None, 0.1)]


def test_adaptive_scale_detector():
    inner = _FakeDetector(char_px=70)  # twice TARGET_CHAR_SIZE: scale 0.5
    page = np.zeros((1000, 600, 3), np.uint8)
    tta = AdaptiveScaleDetector(inner)
    assert tta.adaptive_scale(page) == (pytest.approx(0.5), True)
    inner.calls.clear()
    bboxes, scores = tta.detect(page)
    assert [c[0] for c in inner.calls] == pytest.approx(
        [832, 832 * 0.5 * 0.8, 832 * 0.5, 832 * 0.5 * 1.25])
    assert bboxes.shape == (1, 4)  # the three identical passes vote into one box
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)


def test_adaptive_scale_is_clipped_and_empty_pages():
    page = np.zeros((100, 80, 3), np.uint8)
    assert AdaptiveScaleDetector(_FakeDetector(1.0)).adaptive_scale(page)[0] == 2.0
    inner = _FakeDetector(None)
    bboxes, scores = AdaptiveScaleDetector(inner).detect(page)
    assert bboxes.shape == (0, 4) and scores.shape == (0,)
    assert len(inner.calls) == 1


def test_multi_scale_detector():
    inner = _FakeDetector(30)
    bboxes, scores = MultiScaleDetector(inner, [416, 832]).detect(
        np.zeros((50, 50, 3), np.uint8), score_threshold=0.2)
    assert inner.calls == [(416, 0.2), (832, 0.2)]
    assert bboxes.shape == (1, 4)


class _SizedFakeDetector(_FakeDetector):
    """A fake detector that tells its network input size (shorter side rounded to 32)."""

    def network_size(self, height, width, min_side):
        return (int(round(min_side / 32)) * 32,)


def test_a_pass_at_the_first_pass_size_is_run_once():
    inner = _SizedFakeDetector(char_px=35)  # at the target size: scale 1.0
    page = np.zeros((1000, 600, 3), np.uint8)
    bboxes, _ = AdaptiveScaleDetector(inner).detect(page, score_threshold=0.3)
    # the middle TTA pass (832 x 1.0) is the first pass: reused, not run again
    assert inner.calls == [(832, 0.3), (pytest.approx(832 * 0.8), 0.3),
                           (pytest.approx(832 * 1.25), 0.3)]
    assert bboxes.shape == (1, 4)
    # the same voting as with the pass run again
    again = AdaptiveScaleDetector(_FakeDetector(char_px=35)).detect(page, score_threshold=0.3)
    np.testing.assert_array_equal(bboxes, again[0])


def test_passes_that_round_to_one_network_size_are_run_once():
    inner = _SizedFakeDetector(char_px=35)
    tta = AdaptiveScaleDetector(inner, scales=(0.99, 1.0, 1.01, 1.25))
    tta.detect(np.zeros((1000, 600, 3), np.uint8))
    # 823.7, 832 and 840.3 all round to 832: one pass at 832 (the first) and one at 1040
    assert [c[0] for c in inner.calls] == pytest.approx([832, 1040])


def test_first_pass_at_another_side_gives_the_same_scale():
    page = np.zeros((1000, 600, 3), np.uint8)
    inner = _FakeDetector(char_px=50)
    tta = AdaptiveScaleDetector(inner, first_min_side=416)
    assert tta.first_min_side == 416 and tta.base_min_side == 832
    # the character is measured in page pixels, so the scale is the same: 35 / 50
    assert tta.adaptive_scale(page) == (pytest.approx(0.7), True)
    assert AdaptiveScaleDetector(inner).adaptive_scale(page) == (pytest.approx(0.7), True)
    inner.calls.clear()
    tta.detect(page)
    assert [c[0] for c in inner.calls] == pytest.approx(
        [416, 832 * 0.7 * 0.8, 832 * 0.7, 832 * 0.7 * 1.25])
    assert AdaptiveScaleDetector(inner).first_min_side == 832  # the original by default
    assert AdaptiveScaleDetector(inner, first_min_side=np.int64(640)).first_min_side == 640
    for bad in (0, -5):
        with pytest.raises(ValueError, match=r'first_min_side .* got {}'.format(bad)):
            AdaptiveScaleDetector(inner, first_min_side=bad)


def test_centernet_network_size_is_what_detect_resizes_to():
    from kr.detector import Res18UnetCenterNet
    model = Res18UnetCenterNet(width=0.125)
    assert model.network_size(3900, 2400, 832) == (1344, 832)
    assert model.network_size(3900, 2400, 1040) == (1696, 1024)   # 32.5 rounds to even
    assert model.network_size(100, 70, None) == (96, 64)
