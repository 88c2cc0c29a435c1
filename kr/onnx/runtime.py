"""ONNX Runtime backend: the exported detector and classifier as drop-in replacements.

:class:`OnnxDetector` has the ``detect(image, min_side, score_threshold)`` of
:class:`~kr.detector.Res18UnetCenterNet` and :class:`OnnxClassifier` the
``classify(image, bboxes)`` of the classifiers, with the same outputs (NumPy float32 /
int32), so the test-time augmentation wrappers of :mod:`kr.detector.tta` and
:class:`kr.inference.PageRecognizer` take them unchanged::

    from kr.onnx import load_onnx_models
    detector, classifier = load_onnx_models('results/onnx')   # written by script 10
    recognizer = PageRecognizer(detector, classifier, mapping)

Only the network runs in ONNX Runtime: resizing, normalisation, decoding, NMS and cropping
are the project's own functions, as in the Chainer models.
"""

import json
import os

import numpy as np

from kr.classifier.base import classify_boxes
from kr.classifier.base import CLASSIFY_BATCH_SIZE
from kr.classifier.transforms import INPUT_SIZE
from kr.datasets.image import normalize_image
from kr.datasets.image import to_array
from kr.detector.centernet.decode import decode
from kr.detector.centernet.heatmap import HEATMAP_STRIDE
from kr.detector.centernet.model import NMS_THRESHOLD
from kr.detector.centernet.model import SCORE_THRESHOLD
from kr.detector.centernet.transforms import IMAGE_MIN_SIDE
from kr.detector.centernet.transforms import inference_size
from kr.detector.centernet.transforms import resize_image
from kr.detector.nms import per_class_nms
from kr.onnx.export import METADATA_FILE
from kr.onnx.export import METADATA_VERSION


def default_threads() -> int:
    """CPU cores this process may use (the intra-op thread count of the sessions)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def make_session(path: str, threads: int = None, providers=None):
    """An ``onnxruntime.InferenceSession`` tuned for small CPUs.

    One operator at a time (``inter_op_num_threads = 1``, sequential execution: our graphs
    are chains, nothing runs in parallel), each using ``threads`` cores (default: all the
    process may use, :func:`default_threads`); every graph optimisation enabled.

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
    return ort.InferenceSession(path, sess_options=options,
                                providers=list(providers or ['CPUExecutionProvider']))


class OnnxDetector:
    """The CenterNet detector run by ONNX Runtime (an export of
    :class:`~kr.detector.Res18UnetCenterNet` by :func:`kr.onnx.export_detector`).

    Args:
        path: ``detector.onnx``.
        n_fg_class: Foreground classes of the exported model.
        score_threshold: Default minimum class probability (see ``Res18UnetCenterNet``).
        nms_threshold: IoU of the final NMS.
        threads: Intra-op threads (default: the cores available).
        providers: ONNX Runtime execution providers.
    """

    stride = HEATMAP_STRIDE

    def __init__(self, path: str, n_fg_class: int = 1, score_threshold: float = SCORE_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD, threads: int = None, providers=None):
        self.session = make_session(path, threads, providers)
        self.input_name = self.session.get_inputs()[0].name
        self.n_fg_class = n_fg_class
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def forward(self, x) -> np.ndarray:
        """Raw head output.

        Args:
            x: ``(N, 3, H, W)`` float32 normalised images, ``H`` and ``W`` multiples of 32.

        Returns:
            ``(N, n_fg_class + 4, H / 4, W / 4)`` float32 (class logits, size, offset logits).
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]

    def _nms(self, bboxes, labels, scores):
        """Per-class NMS; indices of the kept boxes, highest score first."""
        return per_class_nms(bboxes, labels, scores, self.nms_threshold, self.n_fg_class)

    def predict(self, images, score_threshold: float = None):
        """Detect characters in images at (about) their own size; as
        :meth:`Res18UnetCenterNet.predict <kr.detector.Res18UnetCenterNet.predict>`.

        Returns:
            tuple ``(bboxes, scores)`` of lists, one entry per image: ``(R, 4)`` float32
            ``x_min y_min x_max y_max`` in that image's pixels and ``(R,)`` float32
            probabilities, highest first.
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        all_bboxes, all_scores = [], []
        for image in images:
            image = to_array(image)
            h, w = image.shape[:2]
            size = inference_size(h, w, None)
            y = self.forward(normalize_image(resize_image(image, size))[None])[0]
            bboxes, labels, scores = decode(y, self.n_fg_class, threshold, self.stride)
            keep = self._nms(bboxes, labels, scores)
            scale = np.array([w / size[1], h / size[0]] * 2, dtype=np.float32)
            all_bboxes.append(bboxes[keep] * scale)
            all_scores.append(scores[keep])
        return all_bboxes, all_scores

    def detect(self, image, min_side: int = IMAGE_MIN_SIDE, score_threshold: float = None):
        """Detect the characters of a page; as
        :meth:`Res18UnetCenterNet.detect <kr.detector.Res18UnetCenterNet.detect>`.

        Args:
            image: PIL image or ``(H, W)`` / ``(H, W, 3 or 4)`` uint8 array.
            min_side: Shorter side of the network input (``None``: the page's own size).
            score_threshold: Minimum class probability (default: the detector's).

        Returns:
            tuple ``(bboxes, scores)``: ``(R, 4)`` float32 ``x_min y_min x_max y_max`` in
            page pixels and ``(R,)`` float32 probabilities, highest first.
        """
        image = to_array(image)
        h, w = image.shape[:2]
        size = inference_size(h, w, min_side)
        bboxes, scores = self.predict([resize_image(image, size)], score_threshold)
        scale = np.array([w / size[1], h / size[0]] * 2, dtype=np.float32)
        return (bboxes[0] * scale).astype(np.float32), scores[0]


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

    def classify(self, image, bboxes, batch_size: int = CLASSIFY_BATCH_SIZE):
        """Label every character box of a page; as
        :meth:`ClassifierBase.classify <kr.classifier.ClassifierBase.classify>`.

        Args:
            image: PIL image or ``(H, W, 3)`` uint8 RGB page.
            bboxes: ``(R, 4)`` float ``(x_min, y_min, x_max, y_max)`` in page pixels.
            batch_size: Crops per run.

        Returns:
            tuple: ``(indices, scores)``: ``(R,)`` int32 argmax class indices and ``(R,)``
            float32 softmax probabilities of those classes.

        Raises:
            ValueError: Malformed ``bboxes``.
        """
        return classify_boxes(self.predict, image, bboxes, self.input_size, batch_size)


def load_onnx_models(export_dir: str, threads: int = None, providers=None):
    """The ONNX Runtime detector and classifier of an export folder (script 10).

    Args:
        export_dir: Folder with ``onnx_models.json``, ``detector.onnx`` and
            ``classifier.onnx``.
        threads: Intra-op threads of each session (default: the cores available).
        providers: ONNX Runtime execution providers (default: CPU).

    Returns:
        tuple ``(detector, classifier)``: :class:`OnnxDetector` and :class:`OnnxClassifier`,
        for :class:`kr.inference.PageRecognizer`.

    Raises:
        FileNotFoundError: The folder lacks the metadata or a model file.
        ValueError: Metadata of another format version.
    """
    meta_path = os.path.join(export_dir, METADATA_FILE)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError('{} not found: export the models with '
                                'scripts/10_export_onnx.py'.format(meta_path))
    with open(meta_path, encoding='utf-8') as f:
        meta = json.load(f)
    if meta.get('format_version') != METADATA_VERSION:
        raise ValueError('{} has format version {}, this kr reads {}: export the models '
                         'again with scripts/10_export_onnx.py'.format(
                             meta_path, meta.get('format_version'), METADATA_VERSION))
    det, cls = meta['detector'], meta['classifier']
    detector = OnnxDetector(os.path.join(export_dir, det['file']),
                            n_fg_class=det['n_fg_class'],
                            score_threshold=det['score_threshold'],
                            nms_threshold=det['nms_threshold'],
                            threads=threads, providers=providers)
    classifier = OnnxClassifier(os.path.join(export_dir, cls['file']),
                                input_size=cls['input_size'], threads=threads,
                                providers=providers)
    return detector, classifier
