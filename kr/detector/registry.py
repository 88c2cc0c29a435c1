"""Detector families by name, and rebuilding a trained detector from its run folder.

A family is found through :data:`DETECTORS`; its key is recorded as ``detector`` in the
``args.json`` of every run of script 03, so loading, the ONNX export and the ONNX Runtime
backend dispatch on it. Runs written before the key existed are CenterNet runs.
"""

import dataclasses
import importlib

from kr.detector.centernet.model import CenterNetDetection
from kr.detector.centernet.model import Res18UnetCenterNet
from kr.detector.centernet.model import SCORE_THRESHOLD
from kr.detector.centernet.model import SUBMISSION_SCORE_THRESHOLD
from kr.detector.faster_rcnn import model as faster_rcnn
from kr.detector.retinanet import model as retinanet
from kr.devices import get_device
from kr.runs import load_weights
from kr.runs import read_run_args


@dataclasses.dataclass(frozen=True)
class DetectorFamily:
    """What the rest of ``kr`` needs to know of a detector family.

    Attributes:
        name: Registry key (``args.json``'s ``detector``).
        model: The Chainer Link class; ``model(**{k: args[k] for k in model_keys})``.
        inference: The backend-independent pre- and post-processing class that ``model``
            derives from (the ONNX Runtime backend derives from it too).
        model_keys: ``args.json`` keys that rebuild the architecture, with their defaults.
        thresholds: Calibrated detection probabilities by name: ``default`` (the model's
            own) and ``submission`` (script 07's).
        training_module: Module with the family's ``train_detector`` and ``PRESETS``
            (imported when asked for: loading a model never imports the training floor).
        tta: Whether pages are recognised with adaptive-scale test-time augmentation by
            default (CenterNet, as the original; the fixed-size families of the second seed
            see a page at one size, as the seed did).
        no_onnx: Why the family has no ONNX export (``None``: it has one).
    """

    name: str
    model: type
    inference: type
    model_keys: dict
    thresholds: dict
    training_module: str
    tta: bool = True
    no_onnx: str = None

    def training(self):
        """The family's training module (``train_detector``, ``PRESETS``)."""
        return importlib.import_module(self.training_module)

    def threshold(self, value) -> float:
        """A probability threshold: ``value`` itself, or the calibrated one it names
        (``None``: ``'default'``).

        Raises:
            ValueError: An unknown name or a probability outside ``[0, 1]``.
        """
        if value is None:
            value = 'default'
        if isinstance(value, str):
            if value not in self.thresholds:
                raise ValueError('{} has no {!r} threshold: choose a probability or one of {}'
                                 .format(self.name, value, ', '.join(self.thresholds)))
            return float(self.thresholds[value])
        value = float(value)
        if not 0 <= value <= 1:
            raise ValueError('a detection threshold is a probability in [0, 1], got {}'.format(
                value))
        return value


#: The detector families (``--detector`` of script 03).
DETECTORS = {
    'centernet': DetectorFamily(
        name='centernet', model=Res18UnetCenterNet, inference=CenterNetDetection,
        model_keys={'n_fg_class': 1, 'width': 1.0},
        thresholds={'default': SCORE_THRESHOLD, 'submission': SUBMISSION_SCORE_THRESHOLD},
        training_module='kr.detector.centernet.training'),
    'faster_rcnn': DetectorFamily(
        name='faster_rcnn', model=faster_rcnn.FasterRCNNFPNResNet,
        inference=faster_rcnn.FasterRCNNDetection,
        model_keys={'depth': 101, 'width': 1.0, 'input_size': faster_rcnn.PAGE_INPUT_SIZE,
                    'patch_fraction': None, 'anchor_sizes': faster_rcnn.ANCHOR_SIZES,
                    'anchor_ratios': faster_rcnn.ANCHOR_RATIOS},
        thresholds={'default': faster_rcnn.SCORE_THRESHOLD,
                    'submission': faster_rcnn.SUBMISSION_SCORE_THRESHOLD},
        training_module='kr.detector.faster_rcnn.training', tta=False,
        no_onnx='onnx_chainer has no converter for RoIAlign nor for the proposal NMS, whose '
                'output shapes depend on the data'),
    # The architecture, the input (whole page or patches) and the anchors: what
    # RetinaNetResNet needs to rebuild the run's network and to detect as it was trained.
    'retinanet': DetectorFamily(
        name='retinanet', model=retinanet.RetinaNetResNet,
        inference=retinanet.RetinaNetDetection,
        model_keys={'n_fg_class': 1, 'depth': 101, 'width': 1.0, 'input_size': 512,
                    'patch_fraction': None, 'anchor_scale': 2.0, 'scales_per_octave': 2,
                    'anchor_ratios': '0.5,1,2', 'min_level': 3, 'max_level': 7,
                    'head_norm': 'group', 'max_detections': 1200},
        thresholds={'default': retinanet.SCORE_THRESHOLD,
                    'submission': retinanet.SUBMISSION_SCORE_THRESHOLD},
        training_module='kr.detector.retinanet.training', tta=False,
        no_onnx='its network has two outputs per pyramid level and kr.onnx exports a '
                'detector of one output (onnx_chainer traces the network itself)'),
}
#: The family of runs whose args.json names none (written before the registry existed).
DEFAULT_DETECTOR = 'centernet'


def detector_family(name_or_model) -> DetectorFamily:
    """The :class:`DetectorFamily` of a registry key or of a detector object (a Chainer
    model or an ONNX Runtime one).

    Raises:
        ValueError: An unknown name or object (the choices are named).
    """
    if isinstance(name_or_model, str):
        if name_or_model not in DETECTORS:
            raise ValueError('unknown detector {!r}: choose one of {}'.format(
                name_or_model, ', '.join(sorted(DETECTORS))))
        return DETECTORS[name_or_model]
    for family in DETECTORS.values():
        if isinstance(name_or_model, family.inference):
            return family
    raise ValueError('{} is not a detector of any family in kr.detector.DETECTORS'.format(
        type(name_or_model).__name__))


def build_detector(name: str = DEFAULT_DETECTOR, **kwargs):
    """A fresh detector of family ``name`` (``kwargs``: its ``model_keys``)."""
    family = detector_family(name)
    settings = dict(family.model_keys)
    settings.update({k: v for k, v in kwargs.items() if v is not None})
    return family.model(**settings)


def load_detector(model_path: str, args_path: str = None, device=None):
    """Rebuild a trained detector from ``model_<epoch>.npz`` and its run's ``args.json``.

    Args:
        model_path: Weights written by script 03.
        args_path: The run's ``args.json`` (default: beside ``model_path``): its
            ``detector`` (the family; CenterNet when absent) and architecture keys.
        device: Where to put the model (``-1``, ``0``, ``'@cupy:0'``; default CPU).

    Raises:
        FileNotFoundError: A missing file (named).
        ValueError: An unknown family or weights that do not fit (named).
    """
    args = read_run_args(model_path, args_path, what='detector')
    family = detector_family(args.get('detector') or DEFAULT_DETECTOR)
    model = build_detector(family.name, **{k: args.get(k) for k in family.model_keys})
    load_weights(model_path, model, '{} detector'.format(family.name))
    if device is not None:
        model.to_device(get_device(device))
    return model
