"""Architecture names -> classes, and rebuilding a trained classifier from its run folder."""

import json
import os

import chainer

from kr.classifier.mobilenetv3 import MobileNetV3
from kr.classifier.resnet import Resnet18
from kr.classifier.resnet import Resnet34
from kr.classifier.resnet import Resnet50
from kr.classifier.transforms import INPUT_SIZE
from kr.classifier.xception import Xception

#: ``--model`` choices of scripts 04/06 and the ``model`` key of a run's args.json.
CLASSIFIERS = {
    'mobilenetv3': MobileNetV3,
    'resnet18': Resnet18,
    'resnet34': Resnet34,
    'resnet50': Resnet50,
    'xception': Xception,
}


def build_classifier(model: str, n_classes: int, width: float = 1.0,
                     input_size: int = INPUT_SIZE):
    """A fresh classifier by architecture name.

    Args:
        model: A key of :data:`CLASSIFIERS`.
        n_classes: Output classes.
        width: Channel multiplier.
        input_size: Crop side used by ``classify``.

    Raises:
        ValueError: Unknown name (the choices are listed).
    """
    if model not in CLASSIFIERS:
        raise ValueError('unknown classifier {!r}: choose one of {}'.format(
            model, ', '.join(CLASSIFIERS)))
    return CLASSIFIERS[model](n_classes, width=width, input_size=input_size)


def load_classifier(model_path: str, args_path: str = None):
    """Rebuild a trained classifier from ``model_<epoch>.npz`` and its run's ``args.json``.

    Args:
        model_path: Weights written by scripts 04/06 (``model_<epoch>.npz``).
        args_path: The run's ``args.json`` (default: the one beside ``model_path``), which
            records ``model``, ``n_classes``, ``width`` and ``input_size``.

    Returns:
        The classifier on the CPU (move it with ``to_device``).

    Raises:
        FileNotFoundError: A missing file.
        ValueError: An args.json without the architecture keys.
    """
    args_path = args_path or os.path.join(os.path.dirname(os.path.abspath(model_path)),
                                          'args.json')
    for path in (model_path, args_path):
        if not os.path.isfile(path):
            raise FileNotFoundError('{} not found'.format(path))
    with open(args_path, encoding='utf-8') as f:
        args = json.load(f)
    missing = [k for k in ('model', 'n_classes') if args.get(k) is None]
    if missing:
        raise ValueError('{} lacks {}: it was not written by scripts/04_train_classifier.py'
                         .format(args_path, ', '.join(missing)))
    model = build_classifier(args['model'], args['n_classes'], width=args.get('width') or 1.0,
                             input_size=args.get('input_size') or INPUT_SIZE)
    chainer.serializers.load_npz(model_path, model)
    return model
