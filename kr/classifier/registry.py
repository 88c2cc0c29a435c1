"""Architecture names -> classes, and rebuilding a trained classifier from its run folder.

A classifier run folder is self-contained: the weights, the ``args.json`` that records the
architecture (``model``, ``n_classes``, ``width``, ``input_size``) and the class table the
classifier was trained with (``unicode_translation.csv``: output ``i`` is its row ``i``).
"""

import os

from kr import fileio
from kr.classifier.mobilenetv3 import MobileNetV3
from kr.classifier.resnet import Resnet18
from kr.classifier.resnet import Resnet34
from kr.classifier.resnet import Resnet50
from kr.classifier.transforms import INPUT_SIZE
from kr.classifier.xception import Xception
from kr.datasets.unicode_mapping import KuzushijiUnicodeMapping
from kr.datasets.unicode_mapping import UNICODE_TRANSLATION_CSV
from kr.runs import load_weights
from kr.runs import read_run_args
from kr.runs import run_dir

#: ``--model`` choices of scripts 04/06 and the ``model`` key of a run's args.json.
CLASSIFIERS = {
    'mobilenetv3': MobileNetV3,
    'resnet18': Resnet18,
    'resnet34': Resnet34,
    'resnet50': Resnet50,
    'xception': Xception,
}
#: Keys of a classifier run's args.json that rebuild its architecture (``dropout``, absent
#: from runs before issue 13, changes no weights: it is kept so that a finetuning run
#: trains with its pretrained run's ratio).
ARCHITECTURE_KEYS = ('model', 'n_classes', 'width', 'input_size', 'dropout')


def build_classifier(model: str, n_classes: int, width: float = 1.0,
                     input_size: int = INPUT_SIZE, dropout: float = None):
    """A fresh classifier by architecture name.

    Args:
        model: A key of :data:`CLASSIFIERS`.
        n_classes: Output classes.
        width: Channel multiplier.
        input_size: Crop side used by ``classify``.
        dropout: Dropout ratio before the class layer, in ``[0, 1)`` (``None``: the
            architecture's own, 0.2 for MobileNetV3, 0.5 for ResNet and Xception).

    Raises:
        ValueError: Unknown name (the choices are listed), or a ratio outside ``[0, 1)``.
    """
    if model not in CLASSIFIERS:
        raise ValueError('unknown classifier {!r}: choose one of {}'.format(
            model, ', '.join(CLASSIFIERS)))
    kwargs = {}
    if dropout is not None:
        if not 0 <= dropout < 1:
            raise ValueError('dropout must be in [0, 1), got {}'.format(dropout))
        kwargs['dropout_ratio'] = float(dropout)
    return CLASSIFIERS[model](n_classes, width=width, input_size=input_size, **kwargs)


def classifier_architecture(model_path: str, args_path: str = None) -> dict:
    """``model``, ``n_classes``, ``width``, ``input_size`` and ``dropout`` of the run that
    wrote ``model_path`` (from its ``args.json``; ``None`` for a key it lacks).

    Raises:
        FileNotFoundError: Missing weights or args.json (named).
        ValueError: An args.json without the architecture keys.
    """
    args = read_run_args(model_path, args_path, what='classifier')
    missing = [k for k in ('model', 'n_classes') if args.get(k) is None]
    if missing:
        raise ValueError('{} lacks {}: it was not written by scripts/04_train_classifier.py '
                         'or 06_finetune_classifier.py'.format(
                             args_path or os.path.join(run_dir(model_path), 'args.json'),
                             ', '.join(missing)))
    return {k: args.get(k) for k in ARCHITECTURE_KEYS}


def load_classifier(model_path: str, args_path: str = None):
    """Rebuild a trained classifier from ``model_<epoch>.npz`` and its run's ``args.json``.

    Args:
        model_path: Weights written by scripts 04/06 (``model_<epoch>.npz``).
        args_path: The run's ``args.json`` (default: the one beside ``model_path``).

    Returns:
        The classifier on the CPU (move it with ``to_device``).

    Raises:
        FileNotFoundError: A missing file.
        ValueError: An args.json without the architecture keys, or weights of another
            architecture (named).
    """
    arch = classifier_architecture(model_path, args_path)
    model = build_classifier(arch['model'], arch['n_classes'], width=arch['width'] or 1.0,
                             input_size=arch['input_size'] or INPUT_SIZE, dropout=arch['dropout'])
    load_weights(model_path, model, '{} classifier'.format(arch['model']))
    return model


def class_table_path(model_path: str) -> str:
    """The class table of the run that wrote ``model_path``: ``unicode_translation.csv``
    beside it."""
    return os.path.join(run_dir(model_path), UNICODE_TRANSLATION_CSV)


def save_class_table(mapping: KuzushijiUnicodeMapping, out: str) -> str:
    """Copy ``mapping``'s CSV into the run folder ``out`` (created), whole or not at all.

    Returns:
        str: The path written.
    """
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, UNICODE_TRANSLATION_CSV)
    if os.path.abspath(path) != os.path.abspath(mapping.path):
        with open(mapping.path, 'rb') as f:
            data = f.read()
        with fileio.atomic_write(path, 'wb') as f:
            f.write(data)
    return path


def load_class_table(model_path: str, data_dir: str = None) -> KuzushijiUnicodeMapping:
    """The class table a classifier was trained with.

    The run folder's own table when it has one (runs of this version on), checked against
    ``data_dir``'s when that is given too; else ``data_dir``'s (runs written before run
    folders carried their table).

    Args:
        model_path: The classifier's weights.
        data_dir: A Kaggle-layout data folder (or a class-table CSV) to check against or,
            for older runs, to take the table from.

    Raises:
        FileNotFoundError: Neither table exists (what to pass is named).
        ValueError: The two tables differ (the first difference is named), or the table's
            size is not the classifier's output count.
    """
    own = class_table_path(model_path)
    given = KuzushijiUnicodeMapping(data_dir) if data_dir is not None else None
    if os.path.isfile(own):
        mapping = KuzushijiUnicodeMapping(own)
        if given is not None:
            check_same_classes(mapping, given)
    elif given is not None:
        mapping = given
    else:
        raise FileNotFoundError(
            '{} not found: the classifier run that wrote {} has no class table; pass the '
            'data folder it was trained on (--data-dir)'.format(own, model_path))
    n_classes = read_run_args(model_path, what='classifier').get('n_classes')
    if n_classes is not None and int(n_classes) != len(mapping):
        raise ValueError('{} has {} classes but {} lists {}: was it trained on another data '
                         'folder?'.format(model_path, n_classes, mapping.path, len(mapping)))
    return mapping


def check_same_classes(expected: KuzushijiUnicodeMapping,
                       actual: KuzushijiUnicodeMapping) -> None:
    """Raise ValueError unless the two tables list the same codes in the same order.

    A table of the right size in another order would silently relabel every character.
    """
    a, b = expected.unicodes, actual.unicodes
    if a == b:
        return
    if len(a) != len(b):
        raise ValueError('{} lists {} classes but the model was trained with {} ({}): was it '
                         'trained on another data folder?'.format(actual.path, len(b),
                                                                  len(a), expected.path))
    i = next(i for i, (u, v) in enumerate(zip(a, b)) if u != v)
    raise ValueError('{} differs from the class table the model was trained with ({}): row '
                     '{} is {} there but {} here; the class index is the row order'.format(
                         actual.path, expected.path, i + 1, a[i], b[i]))
