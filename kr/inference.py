"""Recognising pages: the detector and the classifier joined (SPEC sections 5 and 6).

One place used by the pseudo labels (script 05), the submission (script 07) and users' own
code::

    from kr.inference import PageRecognizer, load_detector, load_classifier
    recognizer = PageRecognizer(load_detector('results/detector/model_700.npz'),
                                load_classifier('results/classifier/model_900.npz'),
                                KuzushijiUnicodeMapping('data/kuzushiji-recognition'))
    text = [ch.char for ch in recognizer.recognize(page)]   # page: a PIL image; each ch
    # also has .unicode, .bbox, .center, .detection_score and .class_score

Each model is rebuilt from the ``args.json`` its training run wrote beside the weights, so
no architecture flag has to be repeated.
"""

import dataclasses
import json
import logging
import os
import tempfile

import chainer
import numpy as np

from kr.bbox import box_centers
from kr.classifier.registry import load_classifier  # NOQA: re-exported for users
from kr.cli import parse_device
from kr.cli import progress
from kr.datasets.image import to_array
from kr.detector import AdaptiveScaleDetector
from kr.detector import Res18UnetCenterNet
from kr.detector import ScaledDetector
from kr.detector import SUBMISSION_SCORE_THRESHOLD

logger = logging.getLogger(__name__)

#: Classifier probability below which a detected character is dropped from a submission
#: (the original's prepare_submission setting).
CLASS_SCORE_THRESHOLD = 0.5


def _run_args(model_path: str, args_path: str = None) -> dict:
    args_path = args_path or os.path.join(os.path.dirname(os.path.abspath(model_path)),
                                          'args.json')
    if not os.path.isfile(args_path):
        raise FileNotFoundError('{} not found: the args.json of the training run that wrote {} '
                                'records its architecture (pass args_path)'.format(
                                    args_path, model_path))
    with open(args_path, encoding='utf-8') as f:
        return json.load(f)


def load_detector(model_path: str, args_path: str = None, device=None) -> Res18UnetCenterNet:
    """Rebuild a trained detector from ``model_<epoch>.npz`` and its run's ``args.json``.

    Args:
        model_path: Weights written by script 03.
        args_path: The run's ``args.json`` (default: beside ``model_path``); its ``width``
            gives the channel multiplier.
        device: Where to put the model (``-1``, ``0``, ``'@cupy:0'``; default CPU).

    Raises:
        FileNotFoundError: A missing file (named).
    """
    if not os.path.isfile(model_path):
        raise FileNotFoundError('detector weights not found: {}'.format(model_path))
    args = _run_args(model_path, args_path)
    model = Res18UnetCenterNet(n_fg_class=int(args.get('n_fg_class', 1)),
                               width=float(args.get('width') or 1.0))
    chainer.serializers.load_npz(model_path, model)
    if device is not None:
        model.to_device(chainer.get_device(parse_device(device)))
    return model


@dataclasses.dataclass(frozen=True)
class Character:
    """One recognised character of a page.

    Attributes:
        unicode: ``'U+XXXX'``.
        char: The character itself.
        bbox: ``(x_min, y_min, x_max, y_max)`` in page pixels.
        center: ``(x, y)`` box centre in page pixels (what a submission writes).
        detection_score: Detector probability.
        class_score: Classifier softmax probability of ``unicode``.
    """

    unicode: str
    char: str
    bbox: tuple
    center: tuple
    detection_score: float
    class_score: float


class PageRecognizer:
    """Detect the characters of a page, then classify each one.

    Args:
        detector: A model with ``detect(image, min_side=..., score_threshold=...)``
            (:class:`~kr.detector.Res18UnetCenterNet`).
        classifier: A model with ``classify(image, bboxes) -> (indices, scores)``.
        mapping: :class:`~kr.datasets.KuzushijiUnicodeMapping` of the classifier's classes.
        detection_threshold: Detector probability threshold (default: the submission's,
            SPEC section 6).
        class_threshold: Classifier probability under which a character is dropped.
        tta: Use adaptive-scale test-time augmentation (SPEC section 3); else one pass at
            the standard size.
    """

    def __init__(self, detector, classifier, mapping,
                 detection_threshold: float = SUBMISSION_SCORE_THRESHOLD,
                 class_threshold: float = CLASS_SCORE_THRESHOLD, tta: bool = True):
        self.detector = detector
        self.classifier = classifier
        self.mapping = mapping
        self.detection_threshold = detection_threshold
        self.class_threshold = class_threshold
        self.tta = tta
        self._detect = (AdaptiveScaleDetector(detector) if tta else ScaledDetector(detector))

    def detect(self, image):
        """``(bboxes (R, 4) float32 xyxy page pixels, scores (R,) float32)`` of a page."""
        return self._detect.detect(to_array(image), score_threshold=self.detection_threshold)

    def classify(self, image, bboxes, detection_scores) -> list:
        """Classify detected boxes; returns the :class:`Character` list above the threshold."""
        bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
        detection_scores = np.asarray(detection_scores, dtype=np.float32).reshape(-1)
        indices, scores = self.classifier.classify(image, bboxes)
        centers = box_centers(bboxes.astype(np.float64))
        out = []
        for i in np.flatnonzero(scores >= self.class_threshold):
            out.append(Character(
                unicode=self.mapping.index_to_unicode(indices[i]),
                char=self.mapping.index_to_char(indices[i]),
                bbox=tuple(float(v) for v in bboxes[i]),
                center=(float(centers[i, 0]), float(centers[i, 1])),
                detection_score=float(detection_scores[i]),
                class_score=float(scores[i])))
        return out

    def recognize(self, image, detections=None) -> list:
        """Recognise a page.

        Args:
            image: PIL image or ``(H, W, 3)`` uint8 RGB array.
            detections: Cached ``(bboxes, scores)`` to use instead of running the detector;
                boxes under :attr:`detection_threshold` are dropped (so a cache made at a
                lower threshold serves a higher one, up to the small effect of box voting).

        Returns:
            list of :class:`Character`, in the detector's order (highest score first).
        """
        image = to_array(image)
        if detections is None:
            bboxes, scores = self.detect(image)
        else:
            bboxes, scores = self._filter(*detections)
        return self.classify(image, bboxes, scores)

    def _filter(self, bboxes, scores):
        # a cache made at a lower threshold serves a higher one
        keep = np.asarray(scores) >= (self.detection_threshold or 0)
        return np.asarray(bboxes)[keep], np.asarray(scores)[keep]

    def recognize_dataset(self, dataset, detections: dict = None, desc: str = 'recognise'):
        """Recognise every page of a page dataset.

        Args:
            dataset: A :class:`~kr.datasets.KuzushijiPageDataset` (or any dataset of dicts
                with ``image`` and ``image_id``).
            detections: ``{image_id: (bboxes, scores)}`` cache; pages found in it skip the
                detector, pages not found are detected and added to it.
            desc: Progress label.

        Yields:
            tuple: ``(image_id, image, characters)`` page by page.
        """
        for i in progress(range(len(dataset)), desc=desc):
            item = dataset[i]
            image = to_array(item['image'])
            image_id = item['image_id']
            if detections is not None and image_id in detections:
                dets = self._filter(*detections[image_id])
            else:
                dets = self.detect(image)
                if detections is not None:
                    detections[image_id] = dets
            yield image_id, image, self.classify(image, *dets)



#: Inference backends of :func:`load_recognizer` (``--backend`` of scripts 05 and 07).
BACKENDS = ('chainer', 'onnxruntime')


def load_recognizer(detector_path: str, classifier_path: str, data_dir: str, device=None,
                    backend: str = 'chainer', onnx_dir: str = None,
                    **kwargs) -> PageRecognizer:
    """A :class:`PageRecognizer` from two training runs' weights and a data folder.

    Args:
        detector_path: ``model_<epoch>.npz`` of script 03 (``args.json`` beside it).
        classifier_path: ``model_<epoch>.npz`` of script 04 or 06 (``args.json`` beside it).
        data_dir: Folder whose ``unicode_translation.csv`` is the classifier's class table.
        device: ``-1`` / ``0`` / ``'@cupy:0'`` (default CPU; Chainer backend only).
        backend: ``'chainer'``, or ``'onnxruntime'``: the two models are exported to ONNX
            (into ``onnx_dir``, default a temporary folder) and run by ONNX Runtime, which
            gives the same characters several times faster on a CPU.
        onnx_dir: Where to write the ONNX export (kept for reuse with script 10's loader).
        **kwargs: Thresholds and ``tta`` of :class:`PageRecognizer`.

    Raises:
        ValueError: Unknown backend, or the classifier's class count differs from the class
            table's.
    """
    from kr.datasets.unicode_mapping import KuzushijiUnicodeMapping
    if backend not in BACKENDS:
        raise ValueError('unknown backend {!r}: choose one of {}'.format(
            backend, ', '.join(BACKENDS)))
    mapping = KuzushijiUnicodeMapping(data_dir)
    detector = load_detector(detector_path)
    classifier = load_classifier(classifier_path)
    n_out = _run_args(classifier_path).get('n_classes')
    if n_out is not None and int(n_out) != len(mapping):
        raise ValueError('{} has {} classes but {} lists {}: was it trained on another data '
                         'folder?'.format(classifier_path, n_out, mapping.path, len(mapping)))
    if backend == 'onnxruntime':
        from kr.onnx import export_models
        from kr.onnx import load_onnx_models
        onnx_dir = onnx_dir or tempfile.mkdtemp(prefix='kr-onnx-')
        export_models(detector, classifier, onnx_dir)
        detector, classifier = load_onnx_models(onnx_dir)
    elif device is not None:
        device = chainer.get_device(parse_device(device))
        detector.to_device(device)
        classifier.to_device(device)
    return PageRecognizer(detector, classifier, mapping, **kwargs)
