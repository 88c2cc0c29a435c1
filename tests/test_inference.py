import json
import os

import chainer
import numpy as np
import pytest

from kr.detector import Res18UnetCenterNet
from kr.inference import Character
from kr.inference import load_detector
from kr.inference import PageRecognizer
from kr.submission import characters_to_submission_labels


class FakeDetector:
    """Returns fixed page boxes at any size, as Res18UnetCenterNet.detect does."""

    min_side = 832

    def __init__(self, bboxes, scores):
        self.bboxes, self.scores, self.calls = np.asarray(bboxes, np.float32), np.asarray(scores, np.float32), 0

    def detect(self, image, min_side=None, score_threshold=None):
        self.calls += 1
        keep = self.scores >= (score_threshold or 0)
        return self.bboxes[keep], self.scores[keep]


class FakeClassifier:
    def __init__(self, indices, scores):
        self.indices, self.scores = np.asarray(indices, np.int32), np.asarray(scores, np.float32)

    def classify(self, image, bboxes):
        return self.indices[:len(bboxes)], self.scores[:len(bboxes)]


class FakeMapping:
    codes = ['U+3042', 'U+3044', 'U+3046']

    def index_to_unicode(self, i):
        return self.codes[i]

    def index_to_char(self, i):
        return chr(int(self.codes[i][2:], 16))


def test_recognize_thresholds_and_geometry():
    detector = FakeDetector([[10, 20, 30, 60], [40, 40, 50, 51], [0, 0, 5, 5]], [0.9, 0.8, 0.1])
    classifier = FakeClassifier([2, 0], [0.95, 0.4])
    rec = PageRecognizer(detector, classifier, FakeMapping(), detection_threshold=0.5,
                         class_threshold=0.5, tta=False)
    chars = rec.recognize(np.zeros((100, 80, 3), np.uint8))
    assert chars == [Character(unicode='U+3046', char='う', bbox=(10.0, 20.0, 30.0, 60.0),
                               center=(20.0, 40.0), detection_score=pytest.approx(0.9),
                               class_score=pytest.approx(0.95))]
    assert characters_to_submission_labels(chars) == 'U+3046 20 40'
    assert characters_to_submission_labels([]) == ''


def test_class_threshold_is_inclusive_and_applied_once():
    # The pseudo labels keep what the recognizer returns: its class threshold (0.9 for
    # script 05) keeps a score equal to it and drops one just below.
    detector = FakeDetector([[0, 0, 4, 4], [5, 5, 9, 9], [10, 10, 14, 14]], [0.9] * 3)
    rec = PageRecognizer(detector, FakeClassifier([0, 1, 2], [0.89, 0.9, 0.99]), FakeMapping(),
                         detection_threshold=0.5, class_threshold=0.9, tta=False)
    chars = rec.recognize(np.zeros((32, 32, 3), np.uint8))
    assert [c.class_score for c in chars] == [pytest.approx(0.9), pytest.approx(0.99)]


def test_thresholds_by_family_name_and_range():
    model = Res18UnetCenterNet(width=0.125)
    clf = FakeClassifier([], [])
    assert PageRecognizer(model, clf, FakeMapping()).detection_threshold == 0.57
    assert PageRecognizer(model, clf, FakeMapping(),
                          detection_threshold='default').detection_threshold == 0.62
    with pytest.raises(ValueError, match="no 'best' threshold"):
        PageRecognizer(model, clf, FakeMapping(), detection_threshold='best')
    with pytest.raises(ValueError, match='class threshold is a probability'):
        PageRecognizer(model, clf, FakeMapping(), class_threshold=1.5)
    with pytest.raises(ValueError, match='FakeDetector is not a detector of any family'):
        PageRecognizer(FakeDetector([], []), clf, FakeMapping())


def test_empty_page():
    rec = PageRecognizer(FakeDetector(np.zeros((0, 4)), []), FakeClassifier([], []), FakeMapping(),
                         detection_threshold=0.57, tta=True)
    assert rec.recognize(np.zeros((64, 64, 3), np.uint8)) == []


def test_recognize_dataset_uses_and_fills_the_cache():
    pages = [{'image': np.zeros((64, 48, 3), np.uint8), 'image_id': 'p{}'.format(i)} for i in range(3)]
    detector = FakeDetector([[1, 1, 9, 9]], [0.9])
    rec = PageRecognizer(detector, FakeClassifier([1], [0.99]), FakeMapping(),
                         detection_threshold=0.57, tta=False)
    cache = {'p1': (np.array([[2, 2, 4, 4], [5, 5, 6, 6]], np.float32),
                    np.array([0.7, 0.2], np.float32))}
    out = list(rec.recognize_dataset(pages, detections=cache))
    assert [o[0] for o in out] == ['p0', 'p1', 'p2'] and detector.calls == 2
    assert [c.bbox for c in out[1][2]] == [(2.0, 2.0, 4.0, 4.0)]  # 0.2 < the 0.57 threshold
    assert set(cache) == {'p0', 'p1', 'p2'}
    again = list(rec.recognize_dataset(pages, detections=cache))
    assert detector.calls == 2 and [o[2] for o in again] == [o[2] for o in out]


def test_nested_detections_are_dropped_unless_asked_not_to():
    # A tall glyph (0.9), a second peak on its lower half (0.8), the glyph below (0.7).
    boxes = [[0, 0, 10, 20], [1, 10, 9, 20], [0, 20, 10, 30]]
    page = np.zeros((40, 20, 3), np.uint8)

    def recognizer(**kwargs):
        return PageRecognizer(FakeDetector(boxes, [0.9, 0.8, 0.7]),
                              FakeClassifier([0, 1, 2], [0.99] * 3), FakeMapping(),
                              detection_threshold=0.5, tta=False, **kwargs)
    bboxes, scores = recognizer().detect(page)
    assert bboxes.tolist() == [boxes[0], boxes[2]] and scores.tolist() == pytest.approx([0.9, 0.7])
    assert [c.bbox for c in recognizer().recognize(page)] == [(0, 0, 10, 20), (0, 20, 10, 30)]
    assert len(recognizer(nested_overlap=0).recognize(page)) == 3
    # a cache written with the nested boxes kept serves a recognizer that drops them
    cache = {'p': (np.asarray(boxes, np.float32), np.array([0.9, 0.8, 0.7], np.float32))}
    out = list(recognizer().recognize_dataset([{'image': page, 'image_id': 'p'}], cache))
    assert [c.bbox for c in out[0][2]] == [(0, 0, 10, 20), (0, 20, 10, 30)]
    with pytest.raises(ValueError, match=r"nested_overlap \(--nested-overlap\).*got 'half'"):
        recognizer(nested_overlap='half')


def test_classify_tta_asks_the_classifier_for_the_tta_margins():
    class MarginClassifier(FakeClassifier):
        def classify(self, image, bboxes, pad_ratios='not asked'):
            self.asked = pad_ratios
            return super().classify(image, bboxes)

    page = np.zeros((40, 20, 3), np.uint8)
    for tta, asked in ((True, 'tta'), (False, 'not asked')):
        clf = MarginClassifier([0], [0.9])
        rec = PageRecognizer(FakeDetector([[0, 0, 10, 10]], [0.9]), clf, FakeMapping(),
                             detection_threshold=0.5, tta=False, classify_tta=tta)
        assert len(rec.recognize(page)) == 1 and clf.asked == asked and rec.classify_tta is tta
    # a classifier without pad_ratios serves a recognizer without crop TTA
    assert PageRecognizer(FakeDetector([[0, 0, 10, 10]], [0.9]), FakeClassifier([0], [0.9]),
                          FakeMapping(), detection_threshold=0.5, tta=False).recognize(page)


def test_untrained_models_end_to_end(tmp_path):
    from kr.classifier import build_classifier
    from kr.datasets import KuzushijiUnicodeMapping
    (tmp_path / 'u.csv').write_text('Unicode,char\nU+3042,あ\nU+3044,い\n', encoding='utf-8')
    detector = Res18UnetCenterNet(width=0.125)
    classifier = build_classifier('mobilenetv3', 2, width=0.25, input_size=32)
    rec = PageRecognizer(detector, classifier, KuzushijiUnicodeMapping(str(tmp_path / 'u.csv')),
                         detection_threshold=0.0, class_threshold=0.0, tta=False)
    rng = np.random.RandomState(0)
    chars = rec.recognize(rng.randint(0, 255, (160, 96, 3)).astype(np.uint8))
    assert len(chars) > 0
    for c in chars:
        assert c.unicode in ('U+3042', 'U+3044') and 0 <= c.class_score <= 1
        x1, y1, x2, y2 = c.bbox
        assert x1 <= c.center[0] <= x2 and y1 <= c.center[1] <= y2


def test_load_detector_from_run_folder(tmp_path):
    model = Res18UnetCenterNet(width=0.125)
    x = np.random.RandomState(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    with chainer.using_config('train', False):
        expected = model(x).array
    chainer.serializers.save_npz(str(tmp_path / 'model_1.npz'), model)
    with pytest.raises(FileNotFoundError, match='args.json'):
        load_detector(str(tmp_path / 'model_1.npz'))
    json.dump({'width': 0.125}, open(str(tmp_path / 'args.json'), 'w'))
    loaded = load_detector(str(tmp_path / 'model_1.npz'))
    with chainer.using_config('train', False):
        np.testing.assert_array_equal(loaded(x).array, expected)
    with pytest.raises(FileNotFoundError, match='model_2.npz'):
        load_detector(str(tmp_path / 'model_2.npz'))


def test_onnxruntime_backend_gives_the_same_characters(tmp_path):
    pytest.importorskip('onnxruntime')
    from kr.classifier import build_classifier
    from kr.inference import load_recognizer
    (tmp_path / 'unicode_translation.csv').write_text('Unicode,char\nU+3042,あ\nU+3044,い\n',
                                                      encoding='utf-8')
    for name, model, args in (
            ('det', Res18UnetCenterNet(width=0.125), {'width': 0.125}),
            ('clf', build_classifier('mobilenetv3', 2, width=0.25, input_size=32),
             {'model': 'mobilenetv3', 'n_classes': 2, 'width': 0.25, 'input_size': 32})):
        os.makedirs(str(tmp_path / name))
        chainer.serializers.save_npz(str(tmp_path / name / 'model_final.npz'), model)
        json.dump(args, open(str(tmp_path / name / 'args.json'), 'w'))
    page = np.random.RandomState(1).randint(0, 255, (160, 96, 3)).astype(np.uint8)
    kwargs = dict(detection_threshold=0.0, class_threshold=0.0, tta=False)
    paths = (str(tmp_path / 'det' / 'model_final.npz'), str(tmp_path / 'clf' / 'model_final.npz'),
             str(tmp_path))
    ref = load_recognizer(*paths, **kwargs).recognize(page)
    ort = load_recognizer(*paths, backend='onnxruntime', onnx_dir=str(tmp_path / 'onnx'),
                          **kwargs).recognize(page)
    # thousands of near-tied peaks of an untrained net: NMS may break a few ties differently
    assert abs(len(ref) - len(ort)) <= len(ref) // 100 and len(ref) > 0
    ort_by_box = {tuple(np.round(c.bbox, 1)): c for c in ort}
    same = [(c, ort_by_box[tuple(np.round(c.bbox, 1))]) for c in ref
            if tuple(np.round(c.bbox, 1)) in ort_by_box]
    assert len(same) >= 0.99 * len(ref)
    np.testing.assert_allclose([a.class_score for a, _ in same], [b.class_score for _, b in same],
                               atol=1e-4)
    clear = [(a, b) for a, b in same if a.class_score > 0.5 + 1e-3]  # no argmax tie
    assert clear and all(a.unicode == b.unicode for a, b in clear)
    assert os.path.isfile(str(tmp_path / 'onnx' / 'detector.onnx'))
    with pytest.raises(ValueError, match="unknown backend 'tvm'"):
        load_recognizer(*paths, backend='tvm')


def test_tta_defaults_to_the_detector_family(monkeypatch):
    import dataclasses
    from kr.detector import DETECTORS
    from kr.detector.tta import AdaptiveScaleDetector
    from kr.detector.tta import ScaledDetector

    class OneSizeDetector(FakeDetector):
        pass

    family = dataclasses.replace(DETECTORS['centernet'], name='one_size',
                                 inference=OneSizeDetector, tta=False)
    monkeypatch.setitem(DETECTORS, 'one_size', family)
    clf = FakeClassifier([], [])
    one_size = OneSizeDetector([], [])
    assert DETECTORS['centernet'].tta is True
    rec = PageRecognizer(one_size, clf, FakeMapping(), detection_threshold=0.5)
    assert rec.tta is False and type(rec._detect) is ScaledDetector
    rec = PageRecognizer(one_size, clf, FakeMapping(), detection_threshold=0.5, tta=True)
    assert rec.tta is True and type(rec._detect) is AdaptiveScaleDetector
    rec = PageRecognizer(Res18UnetCenterNet(width=0.125), clf, FakeMapping())
    assert rec.tta is True and type(rec._detect) is AdaptiveScaleDetector
    # a detector of no family gets the original's TTA
    assert PageRecognizer(FakeDetector([], []), clf, FakeMapping(),
                          detection_threshold=0.5).tta is True
