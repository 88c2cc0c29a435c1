"""Recognising pages: the detector and the classifier joined (SPEC sections 5 and 6).

One place used by the pseudo labels (script 05), the submission (script 07) and users' own
code::

    from kr.inference import load_recognizer
    recognizer = load_recognizer('results/detector/model_final.npz',
                                 'results/classifier/model_final.npz')
    for ch in recognizer.recognize(page):      # page: a PIL image
        print(ch.char, ch.unicode, ch.bbox, ch.center, ch.detection_score, ch.class_score)

Each model is rebuilt from the ``args.json`` its training run wrote beside the weights, and
the classifier's class table comes from its run folder, so two model paths are enough.
The characters come in the detector's order (highest score first), not in reading order.
"""

import logging
import tempfile

import numpy as np

from kr.bbox import box_centers
from kr.character import Character  # NOQA: re-exported (the recognizer's output)
from kr.classifier.registry import load_class_table
from kr.classifier.registry import load_classifier
from kr.datasets.image import to_array
from kr.detector.nms import check_nested_overlap
from kr.detector.nms import NESTED_OVERLAP
from kr.detector.nms import suppress_nested
from kr.detector.registry import detector_family
from kr.detector.registry import load_detector  # NOQA: re-exported for users
from kr.detector.tta import AdaptiveScaleDetector
from kr.detector.tta import ScaledDetector
from kr.devices import get_device
from kr.progress import progress

logger = logging.getLogger(__name__)

#: Classifier probability below which a detected character is dropped from a submission
#: (the original's prepare_submission setting).
CLASS_SCORE_THRESHOLD = 0.5


def check_thresholds(family, detection_threshold, class_threshold):
    """``(detection, class)`` thresholds as probabilities: a detection threshold given by
    name (or ``None``) is the calibrated one of the detector family that ``family()``
    returns (called only then, so a duck-typed detector with a number needs none).

    Raises:
        ValueError: A probability outside ``[0, 1]`` or an unknown threshold name.
    """
    if isinstance(detection_threshold, str) or detection_threshold is None:
        detection_threshold = family().threshold(detection_threshold)
    for name, value in (('detection', detection_threshold), ('class', class_threshold)):
        if not 0 <= float(value) <= 1:
            raise ValueError('the {} threshold is a probability in [0, 1], got {}'.format(
                name, value))
    return float(detection_threshold), float(class_threshold)


def onnx_backend(flag: str = '--backend onnxruntime', runtime: bool = True):
    """``(export_models, load_onnx_models)`` of :mod:`kr.onnx` (with onnxruntime itself
    imported when ``runtime``), or an ImportError that names ``flag`` and the extra."""
    try:
        from kr.onnx import export_models
        from kr.onnx import load_onnx_models
        if runtime:
            import onnxruntime  # NOQA: fail here, before any export, without the extra
    except ImportError as e:
        raise ImportError('{} needs the onnx extra ({}): pip install -e ".[onnx]"'.format(
            flag, e)) from None
    return export_models, load_onnx_models


def _family_tta(detector) -> bool:
    """The TTA default of ``detector``'s family; the original's (on) for a detector of no
    registered family (anything with ``detect`` and ``min_side`` serves)."""
    try:
        return detector_family(detector).tta
    except ValueError:
        return True


class PageRecognizer:
    """Detect the characters of a page, then classify each one.

    Args:
        detector: A detector of a :data:`kr.detector.DETECTORS` family (Chainer or ONNX
            Runtime), or any model with ``detect(image, min_side=..., score_threshold=...)``
            and ``min_side``.
        classifier: A model with ``classify(image, bboxes) -> (indices, scores)``.
        mapping: :class:`~kr.datasets.KuzushijiUnicodeMapping` of the classifier's classes.
        detection_threshold: Detector probability threshold, or the name of one of the
            detector family's calibrated ones (``'default'``, ``'submission'``; default:
            ``'submission'``, SPEC section 6).
        class_threshold: Classifier probability under which a character is dropped.
        tta: Use adaptive-scale test-time augmentation (SPEC section 3); else one pass at
            the standard size (``None``: the detector family's default,
            :attr:`kr.detector.DetectorFamily.tta`; on for a detector of no family).
        first_min_side: Shorter side of the TTA's first pass, the one that measures the
            characters (default: the detector's standard one, the original; smaller is
            faster and measures less well: see :class:`kr.detector.tta.AdaptiveScaleDetector`).
        nested_overlap: Drop a detection whose centre lies inside a higher-scored one that
            covers this share of the smaller box (:func:`kr.detector.nms.suppress_nested`,
            after the TTA's voting); 0 keeps them, as the original did.
        classify_tta: Average the classifier's probabilities over crops of several margins
            (:data:`kr.classifier.CLASSIFY_TTA_PAD_RATIOS`, five times the classifier's
            work); off: the SPEC's one crop, and a classifier needs no ``pad_ratios``.

    Raises:
        ValueError: A threshold outside ``[0, 1]``, an unknown threshold name, a
            ``first_min_side`` that is not a positive number, or a ``nested_overlap``
            outside ``[0, 1]``.
    """

    def __init__(self, detector, classifier, mapping, detection_threshold='submission',
                 class_threshold: float = CLASS_SCORE_THRESHOLD, tta: bool = None,
                 first_min_side: int = None, nested_overlap: float = NESTED_OVERLAP,
                 classify_tta: bool = False):
        detection_threshold, class_threshold = check_thresholds(
            lambda: detector_family(detector), detection_threshold, class_threshold)
        self.detector = detector
        self.classifier = classifier
        self.mapping = mapping
        self.detection_threshold = detection_threshold
        self.class_threshold = class_threshold
        if tta is None:
            tta = _family_tta(detector)
        self.tta = bool(tta)
        self.first_min_side = first_min_side
        self.nested_overlap = check_nested_overlap(nested_overlap)
        self.classify_tta = bool(classify_tta)
        self._detect = (AdaptiveScaleDetector(detector, first_min_side=first_min_side)
                        if self.tta else ScaledDetector(detector))

    def detect(self, image):
        """``(bboxes (R, 4) float32 xyxy page pixels, scores (R,) float32)`` of a page."""
        return self._suppress(*self._detect.detect(to_array(image),
                                                   score_threshold=self.detection_threshold))

    def _suppress(self, bboxes, scores):
        """The detections without the nested ones (see ``nested_overlap``), order kept."""
        if self.nested_overlap == 0 or len(bboxes) == 0:
            return bboxes, scores
        keep = np.sort(suppress_nested(np.asarray(bboxes), np.asarray(scores),
                                       self.nested_overlap))
        return bboxes[keep], scores[keep]

    def classify(self, image, bboxes, detection_scores) -> list:
        """Classify detected boxes; returns the :class:`Character` list above the threshold."""
        bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
        detection_scores = np.asarray(detection_scores, dtype=np.float32).reshape(-1)
        if self.classify_tta:
            indices, scores = self.classifier.classify(image, bboxes, pad_ratios='tta')
        else:
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
                boxes under :attr:`detection_threshold` and nested boxes (``nested_overlap``)
                are dropped (so a cache made at a lower threshold, or with nested boxes
                kept, serves this recognizer, up to the small effect of box voting).

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
        # a cache made at a lower threshold serves a higher one; suppression commutes with
        # the threshold and a second pass changes nothing, so any cache may be suppressed
        keep = np.asarray(scores) >= self.detection_threshold
        return self._suppress(np.asarray(bboxes)[keep], np.asarray(scores)[keep])

    def recognize_dataset(self, dataset, detections: dict = None, indices=None,
                          desc: str = 'recognise'):
        """Recognise the pages of a page dataset.

        Args:
            dataset: A :class:`~kr.datasets.KuzushijiPageDataset` (or any dataset of dicts
                with ``image`` and ``image_id``).
            detections: ``{image_id: (bboxes, scores)}`` cache; pages found in it skip the
                detector, pages not found are detected and added to it.
            indices: The pages to recognise, in order (default: all).
            desc: Progress label.

        Yields:
            tuple: ``(image_id, image, characters)`` page by page.
        """
        indices = range(len(dataset)) if indices is None else list(indices)
        for i in progress(indices, desc=desc):
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


def load_recognizer(detector_path: str, classifier_path: str, data_dir: str = None,
                    device=None, backend: str = 'chainer', onnx_dir: str = None,
                    int8: bool = False, **kwargs) -> PageRecognizer:
    """A :class:`PageRecognizer` from two training runs' weights.

    Args:
        detector_path: ``model_<epoch>.npz`` of script 03 (``args.json`` beside it).
        classifier_path: ``model_<epoch>.npz`` of script 04 or 06 (``args.json`` and the
            class table beside it).
        data_dir: A data folder whose ``unicode_translation.csv`` must be the classifier's
            class table (checked), or, for classifier runs that carry no table, gives it.
        device: ``-1`` / ``0`` / ``'@cupy:0'`` (default CPU; Chainer backend only).
        backend: ``'chainer'``, or ``'onnxruntime'``: the two models are exported to ONNX
            (into ``onnx_dir``; without one, into a temporary folder removed once the
            sessions are built) and run by ONNX Runtime, which gives the same characters
            several times faster on a CPU.
        onnx_dir: Where to write the ONNX export (kept for reuse with script 10's loader).
        int8: Run int8 quantisations of the detector and the classifier (ONNX Runtime
            backend only; :mod:`kr.onnx.quantize`), calibrated on training pages of
            ``data_dir`` and crops of their characters.
        **kwargs: Thresholds, ``tta``, ``first_min_side``, ``nested_overlap`` and
            ``classify_tta`` of :class:`PageRecognizer`.

    Raises:
        FileNotFoundError: A missing weight file, args.json or class table (named).
        ValueError: Unknown backend, a class table that differs from the classifier's,
            weights that do not fit their args.json, or ``int8`` without the ONNX Runtime
            backend or without ``data_dir``.
        ImportError: ``onnxruntime`` without the onnx extra (the install is named).
    """
    if backend not in BACKENDS:
        raise ValueError('unknown backend {!r}: choose one of {}'.format(
            backend, ', '.join(BACKENDS)))
    if int8 and (backend != 'onnxruntime' or data_dir is None):
        raise ValueError('--int8 quantises the ONNX Runtime detector with calibration pages: '
                         'it needs --backend onnxruntime and --data-dir')
    detector = load_detector(detector_path)
    classifier = load_classifier(classifier_path)
    mapping = load_class_table(classifier_path, data_dir)
    if backend == 'onnxruntime':
        export_models, load_onnx_models = onnx_backend()
        export = {}
        if int8:
            from kr.onnx.quantize import calibration_pages
            export['int8_calibration'] = calibration_pages(data_dir, boxes=True)
        if onnx_dir is not None:
            export_models(detector, classifier, onnx_dir, **export)
            detector, classifier = load_onnx_models(onnx_dir)
        else:
            with tempfile.TemporaryDirectory(prefix='kr-onnx-') as tmp:
                export_models(detector, classifier, tmp, **export)
                detector, classifier = load_onnx_models(tmp)
    elif device is not None:
        device = get_device(device)
        detector.to_device(device)
        classifier.to_device(device)
    return PageRecognizer(detector, classifier, mapping, **kwargs)
