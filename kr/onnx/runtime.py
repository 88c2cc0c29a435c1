"""ONNX Runtime backend: the exported detector and classifier as drop-in replacements.

An :class:`OnnxDetector` has the ``predict`` and ``detect(image, min_side, score_threshold)``
of its family's Chainer model (the same code: only the network differs) and
:class:`OnnxClassifier` the
``classify(image, bboxes)`` of the classifiers, with the same outputs (NumPy float32 /
int32), so the test-time augmentation wrappers of :mod:`kr.detector.tta` and
:class:`kr.inference.PageRecognizer` take them unchanged::

    from kr.onnx import load_onnx_models
    detector, classifier = load_onnx_models('results/onnx')   # written by script 10
    recognizer = PageRecognizer(detector, classifier, mapping)

Only the network runs in ONNX Runtime: resizing, normalisation, decoding, NMS and cropping
are the project's own functions, as in the Chainer models.
"""

import functools
import os

import numpy as np

from kr import fileio
from kr.classifier.base import classify_boxes
from kr.classifier.base import CLASSIFY_BATCH_SIZE
from kr.classifier.transforms import INPUT_SIZE
from kr.datasets.image import normalize_image
from kr.detector.registry import DEFAULT_DETECTOR
from kr.detector.registry import detector_family
from kr.onnx.export import METADATA_FILE
from kr.onnx.export import METADATA_VERSION


def default_threads() -> int:
    """CPU cores this process may use (the intra-op thread count of the sessions)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Session settings measured for the one-second page (SPEC section 12; onnxruntime 1.19, the
#: int8 full-size detector's three TTA passes, on the 2-core machine while other jobs ran):
#: worker threads that sleep instead of spinning between operators took 1.46 s of CPU
#: instead of 1.94 s and 3.2 s instead of 5.1 s of wall time with 2 threads (a spinning
#: thread competes for the cores it waits on); the memory arena on (off: 1.50 s instead
#: of 1.31 s of CPU, 1 thread) and every graph optimisation (EXTENDED, without the layout
#: transformations: 1.49 s). On the idle machine, the whole int8 page
#: (``benchmarks/page_speed.py --int8``): sleeping 0.80 s and 1.37 CPU s, spinning 0.83 s and
#: 1.57 CPU s.
SESSION_CONFIG = {'session.intra_op.allow_spinning': '0'}


def make_session(path: str, threads: int = None, providers=None):
    """An ``onnxruntime.InferenceSession`` tuned for small CPUs.

    One operator at a time (``inter_op_num_threads = 1``, sequential execution: our graphs
    are chains, nothing runs in parallel), each using ``threads`` cores (default: all the
    process may use, :func:`default_threads`), threads that sleep between operators
    (:data:`SESSION_CONFIG`); every graph optimisation enabled, the memory arena on.

    Args:
        path: ``.onnx`` file.
        threads: Intra-op threads.
        providers: Execution providers (default ``['CPUExecutionProvider']``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    import onnxruntime as ort
    if not os.path.isfile(path):
        raise FileNotFoundError('{} not found: export the models with '
                                'scripts/10_export_onnx.py'.format(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or default_threads())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(path, sess_options=options,
                                providers=list(providers or ['CPUExecutionProvider']))


class OnnxDetector:
    """A detector whose network is an ONNX Runtime session (an export by
    :func:`kr.onnx.export_detector`).

    Everything around the network (resizing, normalisation, decoding, NMS, scaling back) is
    the detector family's own inference class, shared with the Chainer model; use
    :func:`onnx_detector_class` (or :func:`load_onnx_models`) for the class of a family.

    Args:
        path: ``detector.onnx``.
        threads: Intra-op threads (default: the cores available).
        providers: ONNX Runtime execution providers.
        **attributes: What the family's inference class needs besides the network
            (``n_fg_class``, ``score_threshold``, ``nms_threshold``, ``min_side``).
    """

    def __init__(self, path: str, threads: int = None, providers=None, **attributes):
        self.path = path
        self.session = make_session(path, threads, providers)
        self.input_name = self.session.get_inputs()[0].name
        for name, value in attributes.items():
            setattr(self, name, value)

    def run_network(self, x) -> np.ndarray:
        """Raw network output of ``(N, 3, H, W)`` float32 normalised images (NumPy)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]

    forward = run_network


@functools.lru_cache(maxsize=None)
def onnx_detector_class(family: str) -> type:
    """The ONNX Runtime detector class of a :data:`kr.detector.DETECTORS` family: an
    :class:`OnnxDetector` whose ``predict`` / ``detect`` are the family's."""
    inference = detector_family(family).inference
    return type('Onnx' + inference.__name__, (OnnxDetector, inference),
                {'__doc__': 'The {} detector run by ONNX Runtime (see OnnxDetector).'.format(
                    family)})


class OnnxClassifier:
    """A character classifier run by ONNX Runtime (an export by
    :func:`kr.onnx.export_classifier`, whose output is already the softmax).

    Args:
        path: ``classifier.onnx``.
        input_size: Side of the crops the model was exported for.
        threads: Intra-op threads (default: the cores available).
        providers: ONNX Runtime execution providers.
    """

    def __init__(self, path: str, input_size: int = INPUT_SIZE, threads: int = None,
                 providers=None):
        self.path = path
        self.session = make_session(path, threads, providers)
        self.input_name = self.session.get_inputs()[0].name
        self.input_size = int(input_size)

    def predict(self, crops) -> np.ndarray:
        """Class probabilities of ready-made crops.

        Args:
            crops: ``(N, S, S, 3)`` uint8 RGB crops, ``S = input_size``.

        Returns:
            ``(N, n_class)`` float32 softmax probabilities.
        """
        x = normalize_image(np.asarray(crops))
        return self.session.run(None, {self.input_name: x})[0]

    def classify(self, image, bboxes, batch_size: int = CLASSIFY_BATCH_SIZE, pad_ratios=None):
        """Label every character box of a page; as
        :meth:`ClassifierBase.classify <kr.classifier.ClassifierBase.classify>`.

        Args:
            image: PIL image or ``(H, W, 3)`` uint8 RGB page.
            bboxes: ``(R, 4)`` float ``(x_min, y_min, x_max, y_max)`` in page pixels.
            batch_size: Crops per run.
            pad_ratios: Crop margins (:func:`kr.classifier.base.classify_boxes`).

        Returns:
            tuple: ``(indices, scores)``: ``(R,)`` int32 argmax class indices and ``(R,)``
            float32 softmax probabilities of those classes.

        Raises:
            ValueError: Malformed ``bboxes`` or ``pad_ratios``.
        """
        return classify_boxes(self.predict, image, bboxes, self.input_size, batch_size,
                              pad_ratios)


def load_onnx_models(export_dir: str, threads: int = None, providers=None):
    """The ONNX Runtime detector and classifier of an export folder (script 10).

    Args:
        export_dir: Folder with ``onnx_models.json``, ``detector.onnx`` and
            ``classifier.onnx``.
        threads: Intra-op threads of each session (default: the cores available).
        providers: ONNX Runtime execution providers (default: CPU).

    Returns:
        tuple ``(detector, classifier)``: an :class:`OnnxDetector` of the exported family
        and an :class:`OnnxClassifier`, for :class:`kr.inference.PageRecognizer`.

    Raises:
        FileNotFoundError: The folder lacks the metadata or a model file.
        ValueError: Metadata of another format version.
    """
    meta = fileio.read_versioned_json(os.path.join(export_dir, METADATA_FILE), METADATA_VERSION,
                                      'export the models with scripts/10_export_onnx.py')
    det, cls = meta['detector'], meta['classifier']
    detector = onnx_detector_class(det.get('family', DEFAULT_DETECTOR))(
        os.path.join(export_dir, det['file']), threads=threads, providers=providers,
        n_fg_class=det['n_fg_class'], score_threshold=det['score_threshold'],
        nms_threshold=det['nms_threshold'], min_side=det['min_side'])
    classifier = OnnxClassifier(os.path.join(export_dir, cls['file']),
                                input_size=cls['input_size'], threads=threads,
                                providers=providers)
    return detector, classifier
