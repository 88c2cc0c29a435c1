import chainer
import numpy as np
import pytest

from kr.detector.fixed_size import FixedSizeDetection
from kr.detector.fixed_size import FixedSizeTrainTransform
from kr.detector.fixed_size import fixed_size_converter
from kr.detector.fixed_size import patch_windows


@pytest.mark.parametrize('height,width,fraction,overlap', [
    (3900, 2400, 0.5, 0.25), (1500, 1000, 0.5, 0.25), (1000, 1500, 0.3, 0.0),
    (700, 700, 1.0, 0.25), (333, 517, 0.45, 0.6)])
def test_patch_cores_tile_the_page(height, width, fraction, overlap):
    windows = patch_windows(height, width, fraction, overlap)
    side = int(round(fraction * min(height, width)))
    area = 0.0
    for (x1, y1, x2, y2), (cx1, cy1, cx2, cy2) in windows:
        assert (x2 - x1, y2 - y1) == (side, side)
        assert 0 <= x1 and 0 <= y1 and x2 <= width and y2 <= height
        assert x1 <= cx1 < cx2 <= x2 and y1 <= cy1 < cy2 <= y2
        area += (cx2 - cx1) * (cy2 - cy1)
    assert area == pytest.approx(height * width)
    # every pixel centre lies in exactly one core
    rng = np.random.RandomState(0)
    points = rng.uniform(0, 1, (500, 2)) * [width, height]
    inside = np.array([[(cx1 <= px < cx2) and (cy1 <= py < cy2)
                        for _, (cx1, cy1, cx2, cy2) in windows] for px, py in points])
    np.testing.assert_array_equal(inside.sum(axis=1), 1)
    # neighbours overlap by at least the asked share of a patch
    xs = sorted({w[0][0] for w in windows})
    if len(xs) > 1:
        assert max(np.diff(xs)) <= side * (1 - overlap) + 1


def test_whole_page_window_and_errors():
    assert patch_windows(30, 20) == [((0, 0, 20, 30), (0.0, 0.0, 20.0, 30.0))]
    with pytest.raises(ValueError, match='patch fraction must be in \\(0, 1\\], got 1.5'):
        patch_windows(30, 20, 1.5)
    with pytest.raises(ValueError, match='patch overlap must be in \\[0, 1\\), got 1'):
        patch_windows(30, 20, 0.5, 1)


def _page():
    image = np.full((200, 100, 3), 250, dtype=np.uint8)
    bboxes = np.array([[10, 20, 30, 60], [50, 150, 90, 190], [0, 0, 5, 5]], dtype=np.float32)
    return {'image': image, 'bboxes': bboxes}


def test_transform_whole_page_boxes():
    x, bboxes = FixedSizeTrainTransform(64)(_page())
    assert x.shape == (3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(bboxes, _page()['bboxes'] * [0.64, 0.32, 0.64, 0.32])


def test_transform_patch_boxes():
    transform = FixedSizeTrainTransform(32, patch_fraction=0.5, seed=0)
    for _ in range(5):
        page = _page()
        x1, y1, x2, y2 = transform.window(200, 100)
        assert x2 - x1 == y2 - y1 == 50
        assert 0 <= x1 <= 50 and 0 <= y1 <= 150
    transform = FixedSizeTrainTransform(32, patch_fraction=0.5, seed=0)
    window = FixedSizeTrainTransform(32, patch_fraction=0.5, seed=0).window(200, 100)
    x, bboxes = transform(page)
    x1, y1 = window[:2]
    centres = (page['bboxes'][:, :2] + page['bboxes'][:, 2:]) / 2
    keep = ((centres >= [x1, y1]) & (centres < [x1 + 50, y1 + 50])).all(axis=1)
    expected = np.clip((page['bboxes'][keep] - [x1, y1, x1, y1]) * 32 / 50, 0, 32)
    np.testing.assert_allclose(bboxes, expected, rtol=1e-6)
    batch = fixed_size_converter([(x, bboxes), (x, np.zeros((0, 4)))], chainer.get_device('@numpy'))
    assert batch[0].shape == (2, 3, 32, 32) and [len(b) for b in batch[1]] == [len(bboxes), 0]


class _FakeDetector(FixedSizeDetection):
    """A network that "finds" fixed boxes in every window (input pixels of a 64 x 64
    input), scored as given."""

    score_threshold = 0.5
    nms_threshold = 0.5
    input_size = 64

    def __init__(self, boxes, scores, **attrs):
        self.boxes = np.asarray(boxes, dtype=np.float32)
        self.scores = np.asarray(scores, dtype=np.float32)
        self.seen = []
        for k, v in attrs.items():
            setattr(self, k, v)

    def run_network(self, x):
        self.seen.append(x.shape)
        return (np.zeros(len(x)),)

    def decode(self, outputs, score_threshold):
        keep = self.scores >= score_threshold
        return [(self.boxes[keep], self.scores[keep]) for _ in outputs[0]]


def test_detect_maps_windows_back_and_merges():
    # a 200 x 100 page in patches of 50 px (2 columns, 5 rows with overlap 0.25)
    detector = _FakeDetector([[16, 16, 48, 48], [0, 0, 6, 6]], [0.9, 0.4],
                             patch_fraction=0.5)
    image = np.full((200, 100, 3), 255, dtype=np.uint8)
    windows = patch_windows(200, 100, 0.5)
    bboxes, scores = detector.detect(image)
    assert detector.seen == [(len(windows), 3, 64, 64)]
    # one box in each window (centre 25 px into it, inside its core), the 0.4 one dropped
    expected = sorted([(x1 + 12.5, y1 + 12.5, x1 + 37.5, y1 + 37.5)
                       for (x1, y1, _, _), (cx1, cy1, cx2, cy2) in windows
                       if cx1 <= x1 + 25 < cx2 and cy1 <= y1 + 25 < cy2])
    np.testing.assert_allclose(sorted(map(tuple, bboxes)), expected, rtol=1e-6)
    assert len(expected) == len(windows)
    np.testing.assert_allclose(scores, 0.9)
    bboxes, scores = detector.detect(image, score_threshold=0.3)
    assert len(bboxes) > len(windows)


def test_detection_cap():
    # 40 disjoint boxes on a whole page: the cap keeps the best scored
    boxes = [[x, y, x + 5, y + 5] for y in range(0, 64, 8) for x in range(0, 40, 8)]
    scores = np.linspace(0.99, 0.6, len(boxes))
    detector = _FakeDetector(boxes, scores, max_detections=7)
    bboxes, got = detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))
    assert len(bboxes) == 7
    np.testing.assert_allclose(got, scores[:7], rtol=1e-6)
    np.testing.assert_allclose(bboxes, np.array(boxes[:7], dtype=np.float32))
    detector.max_detections = 1200
    assert len(detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))[0]) == 40
