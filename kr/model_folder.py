"""A self-contained model folder: everything ``kr recognize`` needs, in one place.

::

    model/
        model.json              format version, thresholds, TTA, nested-box suppression,
                                the files below, where the models came from
        detector/model_final.npz + args.json
        classifier/model_final.npz + args.json + unicode_translation.csv (the class table)
        onnx/                   detector.onnx, classifier.onnx, onnx_models.json (optional)

Made from any two training runs (script 03's detector, script 04's or 06's classifier) by
:func:`make_model_folder` (``kr make-model-folder``) and loaded by
:func:`load_model_folder`. ``make demo`` leaves one in ``results/demo/model``.
"""

import logging
import os
import shutil

from kr import fileio
from kr.classifier.registry import load_class_table
from kr.classifier.registry import save_class_table
from kr.detector.nms import check_nested_overlap
from kr.detector.nms import NESTED_OVERLAP
from kr.detector.registry import DEFAULT_DETECTOR
from kr.detector.registry import detector_family
from kr.inference import BACKENDS
from kr.inference import check_thresholds
from kr.inference import CLASS_SCORE_THRESHOLD
from kr.inference import load_recognizer
from kr.inference import onnx_backend
from kr.inference import PageRecognizer
from kr.runs import RUN_ARGS
from kr.runs import read_run_args

logger = logging.getLogger(__name__)

#: The folder's description, and the version of its layout.
MODEL_JSON = 'model.json'
MODEL_FOLDER_VERSION = 1
DETECTOR_DIR = 'detector'
CLASSIFIER_DIR = 'classifier'
ONNX_DIR = 'onnx'
#: The detector family's calibrated threshold a folder records by default: the one tuned
#: for the submission F1 (SPEC section 6).
DEFAULT_DETECTION_THRESHOLD = 'submission'


def _copy_run(model_path: str, out: str, what: str) -> str:
    """Copy a weight file and its run's args.json into ``out``; returns the new path."""
    read_run_args(model_path, what=what)       # both must exist (named if not)
    os.makedirs(out)
    target = os.path.join(out, os.path.basename(model_path))
    shutil.copyfile(model_path, target)
    shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(model_path)), RUN_ARGS),
                    os.path.join(out, RUN_ARGS))
    return target


def make_model_folder(detector_path: str, classifier_path: str, out: str, onnx: bool = False,
                      data_dir: str = None, detection_threshold=DEFAULT_DETECTION_THRESHOLD,
                      class_threshold: float = CLASS_SCORE_THRESHOLD, tta: bool = None,
                      first_min_side: int = None, int8: bool = False,
                      overwrite: bool = False, nested_overlap: float = NESTED_OVERLAP,
                      classify_tta: bool = False) -> dict:
    """Build a model folder (see the module doc) whole or not at all.

    Args:
        detector_path: ``model_<epoch>.npz`` of script 03 (its args.json beside it).
        classifier_path: ``model_<epoch>.npz`` of script 04 or 06 (args.json and class
            table beside it; for older runs without a table, give ``data_dir``).
        out: The folder to create.
        onnx: Also export both models to ONNX (needs the onnx extra), so that the ONNX
            Runtime backend starts without exporting.
        data_dir: A data folder whose class table is checked against (or, for older runs,
            stands in for) the classifier's.
        detection_threshold: A probability, or the name of one of the detector family's
            calibrated thresholds (``'default'``, ``'submission'``).
        class_threshold: Classifier probability under which a character is dropped.
        tta: Whether recognition uses adaptive-scale test-time augmentation (``None``: the
            detector family's default).
        first_min_side: Shorter side of the TTA's first pass (``None``: the detector's
            standard one, the original; see :class:`kr.detector.tta.AdaptiveScaleDetector`).
        nested_overlap: Share of the smaller box at which a detection nested in a
            higher-scored one is dropped (:func:`kr.detector.nms.suppress_nested`; 0 keeps
            them, the original).
        classify_tta: Average the classifier over crops of several margins
            (:class:`~kr.inference.PageRecognizer`).
        int8: With ``onnx``, also quantise the detector and the classifier to int8
            (:mod:`kr.onnx.quantize`), calibrated on training pages of ``data_dir`` and crops
            of their characters; the ONNX Runtime backend then runs them.
        overwrite: Replace an existing ``out``.

    Returns:
        dict: What was written to ``model.json``.

    Raises:
        FileNotFoundError: A weight file, args.json or class table is missing (named).
        FileExistsError: ``out`` exists and ``overwrite`` is false.
        ValueError: A bad threshold, class tables that differ, or ``int8`` without
            ``onnx`` and ``data_dir``.
        ImportError: ``onnx`` without the onnx extra.
    """
    if int8 and not (onnx and data_dir):
        raise ValueError('--int8 quantises the ONNX detector with training pages: it needs '
                         '--onnx and --data-dir')
    family = detector_family(read_run_args(detector_path, what='detector').get('detector')
                             or DEFAULT_DETECTOR)
    detection_threshold, class_threshold = check_thresholds(
        lambda: family, detection_threshold, class_threshold)
    nested_overlap = check_nested_overlap(nested_overlap)
    mapping = load_class_table(classifier_path, data_dir)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError('{} already exists; pass --overwrite to replace it'.format(out))
    with fileio.atomic_directory(out, overwrite=overwrite) as tmp:
        det = _copy_run(detector_path, os.path.join(tmp, DETECTOR_DIR), 'detector')
        clf = _copy_run(classifier_path, os.path.join(tmp, CLASSIFIER_DIR), 'classifier')
        save_class_table(mapping, os.path.join(tmp, CLASSIFIER_DIR))
        if onnx:
            export_models, _ = onnx_backend('--onnx', runtime=False)
            from kr.classifier.registry import load_classifier
            from kr.detector.registry import load_detector
            calibration = None
            if int8:
                from kr.onnx.quantize import calibration_pages
                calibration = calibration_pages(data_dir, boxes=True)
            export_models(load_detector(det), load_classifier(clf), os.path.join(tmp, ONNX_DIR),
                          int8_calibration=calibration)
        record = {
            'format_version': MODEL_FOLDER_VERSION,
            'detector': os.path.join(DETECTOR_DIR, os.path.basename(det)),
            'classifier': os.path.join(CLASSIFIER_DIR, os.path.basename(clf)),
            'onnx': ONNX_DIR if onnx else None,
            'detector_family': family.name,
            'detection_threshold': float(detection_threshold),
            'class_threshold': float(class_threshold),
            'tta': bool(family.tta if tta is None else tta),
            'first_min_side': first_min_side,
            'nested_overlap': nested_overlap,
            'classify_tta': bool(classify_tta),
            'int8': bool(int8),
            'classes': len(mapping),
            'made_from': {'detector': os.path.abspath(detector_path),
                          'classifier': os.path.abspath(classifier_path)},
        }
        fileio.write_json(os.path.join(tmp, MODEL_JSON), record)
    logger.info('wrote the model folder %s', out)
    return record


def read_model_folder(path: str) -> dict:
    """The ``model.json`` of a model folder, its paths made absolute.

    Raises:
        FileNotFoundError: ``path`` is not a model folder (what makes one is named).
        ValueError: Another format version.
    """
    meta_path = os.path.join(path, MODEL_JSON)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(
            '--model {}: no {} there; make a model folder with kr make-model-folder '
            'DETECTOR.npz CLASSIFIER.npz --out DIR (make demo leaves one in '
            'results/demo/model)'.format(path, MODEL_JSON))
    record = fileio.read_versioned_json(meta_path, MODEL_FOLDER_VERSION,
                                        'make the folder again with kr make-model-folder')
    for key in ('detector', 'classifier', 'onnx'):
        if record.get(key):
            record[key] = os.path.join(path, record[key])
    return record


def load_model_folder(path: str, backend: str = 'chainer', device=None,
                      **overrides) -> PageRecognizer:
    """The :class:`~kr.inference.PageRecognizer` of a model folder.

    Args:
        path: The folder (:func:`make_model_folder`).
        backend: ``'chainer'`` or ``'onnxruntime'`` (the folder's ONNX files when it has
            them, else the models are exported on the fly).
        device: Chainer device (``-1``, ``0``, ``'@cupy:0'``); Chainer backend only.
        **overrides: ``detection_threshold``, ``class_threshold``, ``tta``,
            ``first_min_side``, ``nested_overlap`` or ``classify_tta`` instead of the
            folder's (a folder made before the last two existed gets their defaults,
            :data:`kr.detector.nms.NESTED_OVERLAP` and no crop TTA).

    Raises:
        FileNotFoundError: Not a model folder, or a file of it is missing (named).
        ValueError: An unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError('unknown backend {!r} (--backend): choose one of {}'.format(
            backend, ', '.join(BACKENDS)))
    record = read_model_folder(path)
    settings = {'detection_threshold': record['detection_threshold'],
                'class_threshold': record['class_threshold'], 'tta': record['tta'],
                'first_min_side': record.get('first_min_side'),
                'nested_overlap': record.get('nested_overlap', NESTED_OVERLAP),
                'classify_tta': record.get('classify_tta', False)}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if backend == 'onnxruntime' and record.get('onnx'):
        _, load_onnx_models = onnx_backend()
        mapping = load_class_table(record['classifier'])
        detector, classifier = load_onnx_models(record['onnx'])
        return PageRecognizer(detector, classifier, mapping, **settings)
    return load_recognizer(record['detector'], record['classifier'], device=device,
                           backend=backend, **settings)
