"""The ONNX Runtime backend gives what the Chainer models give."""

import numpy as np
import pytest

from kr.detector import AdaptiveScaleDetector
from kr.inference import PageRecognizer

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from kr.onnx import export_models  # NOQA: E402
from kr.onnx import load_onnx_models  # NOQA: E402
from kr.onnx import OnnxClassifier  # NOQA: E402
from kr.onnx import OnnxDetector  # NOQA: E402

#: Detection threshold for the untrained test detector: its peaks are near the class
#: prior 0.1, so this keeps a few dozen of them on the test page.
THRESHOLD = 0.15


def _assert_same_boxes(bboxes, scores, expected_bboxes, expected_scores):
    """Same boxes and scores, in any order (scores equal to 1e-6 may swap places)."""
    assert bboxes.shape == expected_bboxes.shape and scores.shape == expected_scores.shape
    order = np.lexsort(np.round(bboxes, 1).T[::-1])
    expected_order = np.lexsort(np.round(expected_bboxes, 1).T[::-1])
    np.testing.assert_allclose(bboxes[order], expected_bboxes[expected_order], atol=1e-2)
    np.testing.assert_allclose(scores[order], expected_scores[expected_order], atol=1e-5)


class FakeMapping:
    """Class index -> a hiragana code point (duck-types KuzushijiUnicodeMapping)."""

    def index_to_unicode(self, index):
        return 'U+{:04X}'.format(0x3042 + int(index))

    def index_to_char(self, index):
        return chr(0x3042 + int(index))


@pytest.fixture(scope='module')
def onnx_models(detector, classifier, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('export'))
    export_models(detector, classifier, out)
    return load_onnx_models(out, threads=1)


def test_load_onnx_models(onnx_models, detector, classifier):
    onnx_detector, onnx_classifier = onnx_models
    assert isinstance(onnx_detector, OnnxDetector) and isinstance(onnx_classifier, OnnxClassifier)
    assert onnx_detector.score_threshold == detector.score_threshold
    assert onnx_classifier.input_size == classifier.input_size


def test_load_onnx_models_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='10_export_onnx'):
        load_onnx_models(str(tmp_path))


@pytest.mark.parametrize('min_side', [None, 256, 832])
def test_detect_equals_chainer(onnx_models, detector, page, min_side):
    bboxes, scores = onnx_models[0].detect(page, min_side=min_side, score_threshold=THRESHOLD)
    expected_bboxes, expected_scores = detector.detect(page, min_side=min_side,
                                                       score_threshold=THRESHOLD)
    assert len(expected_bboxes) > 5
    assert bboxes.dtype == scores.dtype == np.float32
    _assert_same_boxes(bboxes, scores, expected_bboxes, expected_scores)


def test_classify_equals_chainer(onnx_models, classifier, page):
    rng = np.random.RandomState(0)
    xy = rng.uniform(0, [300, 460], (40, 2))
    bboxes = np.concatenate([xy, xy + rng.uniform(8, 30, (40, 2))], axis=1)
    indices, scores = onnx_models[1].classify(page, bboxes, batch_size=16)
    expected_indices, expected_scores = classifier.classify(page, bboxes, batch_size=16)
    assert indices.dtype == np.int32 and scores.dtype == np.float32
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    indices, scores = onnx_models[1].classify(page, np.zeros((0, 4)))
    assert indices.shape == scores.shape == (0,)


def test_tta_accepts_the_onnx_detector(onnx_models, detector, page):
    ours = AdaptiveScaleDetector(onnx_models[0], base_min_side=256).detect(page, THRESHOLD)
    expected = AdaptiveScaleDetector(detector, base_min_side=256).detect(page, THRESHOLD)
    assert len(expected[0]) > 0
    _assert_same_boxes(ours[0], ours[1], expected[0], expected[1])


def test_page_recognizer_gives_the_same_characters(onnx_models, detector, classifier, page):
    kwargs = dict(detection_threshold=THRESHOLD, class_threshold=0.0, tta=True)
    ours = PageRecognizer(*onnx_models, FakeMapping(), **kwargs).recognize(page)
    expected = PageRecognizer(detector, classifier, FakeMapping(), **kwargs).recognize(page)
    assert len(expected) > 5

    def table(characters):
        return sorted((tuple(np.round(c.bbox, 1)), c.unicode) for c in characters)
    assert [u for _, u in table(ours)] == [u for _, u in table(expected)]
    np.testing.assert_allclose([b for b, _ in table(ours)], [b for b, _ in table(expected)],
                               atol=0.11)


def test_sessions_get_the_measured_options(onnx_models, tmp_path):
    import onnxruntime as ort
    from kr.onnx.runtime import make_session
    from kr.onnx.runtime import SESSION_CONFIG
    assert SESSION_CONFIG == {'session.intra_op.allow_spinning': '0'}
    onnx_detector, onnx_classifier = onnx_models
    for session in (onnx_detector.session, onnx_classifier.session):
        options = session.get_session_options()
        assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
        assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
        assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        assert options.enable_cpu_mem_arena
        assert options.get_session_config_entry('session.intra_op.allow_spinning') == '0'
    options = make_session(onnx_detector.path, threads=3).get_session_options()
    assert options.intra_op_num_threads == 3
    with pytest.raises(FileNotFoundError, match='nothing.onnx not found'):
        make_session(str(tmp_path / 'nothing.onnx'))
