"""The top floor: argument parents and run setup of the numbered scripts (and the ``kr``
command to come).

A script builds its parser from the parents here (``data_args``, ``device_args``,
``output_args``), calls :func:`setup_run`, then one library function. Nothing in the
library imports this module.
"""

import argparse
import inspect
import logging
import os
import re
import sys

from kr.datasets.image import MAX_IMAGE_PIXELS
from kr.datasets.image import set_max_image_pixels
from kr.datasets.layout import default_crop_dir  # NOQA: re-exported for the scripts
from kr.datasets.layout import default_split_dir  # NOQA: re-exported for the scripts
from kr.detector.nms import check_nested_overlap
from kr.detector.nms import NESTED_OVERLAP
from kr.runs import run_record
from kr.training.distributed import COMMUNICATORS
from kr.training.distributed import create_communicator
from kr.training.distributed import LR_RULES
from kr.training.distributed import rank_device
from kr.runs import seed_everything
from kr.training.presets import function_defaults
from kr.training.presets import resolve_preset

#: Where the real Kaggle data is unpacked (the original README's layout).
DEFAULT_DATA_DIR = os.path.join('data', 'kuzushiji-recognition')
#: Environment variable that overrides :data:`DEFAULT_DATA_DIR`.
DATA_DIR_ENV = 'KR_DATA_DIR'


def default_data_dir() -> str:
    """``$KR_DATA_DIR`` when set and not empty, else ``data/kuzushiji-recognition``."""
    return os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR


def data_args() -> argparse.ArgumentParser:
    """Parent parser with ``--data-dir`` and ``--split-dir``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--data-dir', default=default_data_dir(),
                   help='Kaggle-layout data folder (default: $%s, else %s; currently %%(default)s)'
                   % (DATA_DIR_ENV, DEFAULT_DATA_DIR))
    p.add_argument('--split-dir', default=None,
                   help='train/val split CSVs written by scripts/01_split_train_val.py '
                        '(default: <data-dir>-gsplit)')
    p.add_argument('--max-image-pixels', type=int, default=None,
                   help='largest page image opened, in pixels (default: {:,}, twice a '
                        '600-dpi scan of a large page)'.format(MAX_IMAGE_PIXELS))
    return p


def device_args() -> argparse.ArgumentParser:
    """Parent parser with ``--device`` and its deprecated alias ``--gpu``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--device', default='-1',
                   help="Chainer device: -1 (CPU), 0 (GPU 0), or a specifier such as "
                        "@numpy or @cupy:0 (default: %(default)s)")
    p.add_argument('--gpu', dest='device',
                   help='deprecated alias of --device, kept so the original commands work')
    return p


def output_args(default: str = None) -> argparse.ArgumentParser:
    """Parent parser with ``--out``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--out', default=default, required=default is None,
                   help='output folder' + (' (default: %(default)s)' if default else ''))
    return p


def communicator_args() -> argparse.ArgumentParser:
    """Parent parser with ``--communicator`` (runs over several processes under ``mpiexec``;
    see :mod:`kr.training.distributed`)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--communicator', choices=COMMUNICATORS, default=None,
                   help='run over N processes with ChainerMN, one per rank under mpiexec -n N: '
                        'naive (CPU), flat or pure_nccl (one GPU per rank) (default: one '
                        'process)')
    return p


def dist_args() -> argparse.ArgumentParser:
    """Parent parser of the trainings: :func:`communicator_args` and ``--lr-rule``."""
    p = argparse.ArgumentParser(add_help=False, parents=[communicator_args()])
    p.add_argument('--lr-rule', choices=LR_RULES, default='linear',
                   help='with --communicator, the lr for the global batch of N ranks: linear '
                        '(N x --lr), sqrt (sqrt(N) x --lr) or none (default: %(default)s)')
    return p


def communicator(args: argparse.Namespace):
    """The ChainerMN communicator of ``--communicator`` (``None`` without it)."""
    name = getattr(args, 'communicator', None)
    if name is None:
        return None
    comm = create_communicator(name)
    # an exception that escapes on one rank aborts them all instead of leaving the others
    # waiting for it in a collective forever
    from chainermn import global_except_hook
    global_except_hook.add_hook()
    return comm


def fail(error, comm=None):
    """End a script on a user error: one ``error:`` line on stderr and exit status 1; on a
    rank of a distributed run, the line names the rank and every rank is stopped (MPI
    abort), so that none waits forever for the one that failed."""
    if comm is None or comm.size == 1:
        sys.exit('error: {}'.format(error))
    sys.stderr.write('error: rank {} of {}: {}\n'.format(comm.rank, comm.size, error))
    sys.stderr.flush()
    comm.mpi_comm.Abort(1)


def model_args() -> argparse.ArgumentParser:
    """Parent parser with the positional ``detector`` and ``classifier`` weights (05, 07, 10)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('detector', help="detector weights (model_final.npz of script 03, with "
                                    "the run's args.json beside it)")
    p.add_argument('classifier', help="classifier weights (model_final.npz of script 04 or 06, "
                                      "with the run's args.json and class table beside it)")
    return p


def recognizer_args(detection_threshold: str, class_threshold: float) -> argparse.ArgumentParser:
    """Parent parser of the scripts that recognise pages (05, 07): the two models, thresholds,
    ``--no-tta`` and ``--backend``.

    Args:
        detection_threshold: Name of the detector family's calibrated threshold used by
            default (``'default'`` or ``'submission'``).
        class_threshold: Default classifier probability threshold.
    """
    p = argparse.ArgumentParser(add_help=False, parents=[model_args()])
    p.add_argument('--detection-threshold', type=float, default=None,
                   help='detector probability threshold (default: the detector family\'s '
                        '%s threshold; CenterNet: 0.62 default, 0.57 submission)'
                        % detection_threshold)
    p.set_defaults(detection_threshold_name=detection_threshold)
    p.add_argument('--class-threshold', type=float, default=class_threshold,
                   help='classifier probability threshold (default: %(default)s)')
    p.add_argument('--no-tta', dest='tta', action='store_false', default=None,
                   help='one detection pass instead of adaptive-scale test-time augmentation '
                        '(default: the detector family\'s: TTA for CenterNet, one pass for '
                        'the fixed-size families)')
    p.add_argument('--backend', choices=('chainer', 'onnxruntime'), default='chainer',
                   help='run the models with Chainer, or export them to ONNX and run them with '
                        'ONNX Runtime (CPU; needs the onnx extra) (default: %(default)s)')
    first_pass_args(p, "(default: the detector's standard side, as the original)")
    nested_args(p, '(default: %(default)s)', NESTED_OVERLAP)
    p.add_argument('--classify-tta', action='store_true', default=None,
                   help='average the classifier over crops of five margins (1.1-1.5 times the '
                        "box's longer side) instead of the original's one crop of 1.2")
    p.add_argument('--int8', action='store_true',
                   help='with --backend onnxruntime: run int8 quantisations of the detector and '
                        'the classifier, calibrated on training pages of --data-dir and '
                        'crops of their characters')
    return p


def first_pass_side(value: str) -> int:
    """``--first-pass-side``: a positive number of pixels."""
    try:
        side = int(value)
    except ValueError:
        side = 0
    if side < 1:
        raise argparse.ArgumentTypeError(
            'a positive number of pixels (the shorter side of the first pass), got {!r}'
            .format(value))
    return side


def first_pass_args(p: argparse.ArgumentParser, default: str) -> None:
    """``--first-pass-side`` (the shorter side of the TTA's scale-measuring pass), with the
    ``default`` described."""
    p.add_argument('--first-pass-side', dest='first_min_side', type=first_pass_side,
                   default=None, metavar='PX',
                   help="shorter side of the adaptive-scale TTA's first pass, which only "
                        'measures the characters; smaller is faster and measures them less '
                        'well ' + default)


def nested_overlap(value: str) -> float:
    """``--nested-overlap``: a share in ``[0, 1]``."""
    try:
        return check_nested_overlap(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            'a share of a box in [0, 1] (0 keeps nested boxes), got {!r}'.format(value)) from None


def nested_args(p: argparse.ArgumentParser, default: str, value=None) -> None:
    """``--nested-overlap`` (:func:`kr.detector.nms.suppress_nested`), defaulting to
    ``value``, with the ``default`` described."""
    p.add_argument('--nested-overlap', type=nested_overlap, default=value, metavar='SHARE',
                   help='drop a detection whose centre lies inside a higher-scored one that '
                        'covers this share of the smaller box (a second peak on one glyph); '
                        '0 keeps them, as the original ' + default)


def recognizer_settings(args: argparse.Namespace, comm=None) -> dict:
    """The keyword arguments of :func:`kr.inference.load_recognizer` given by the flags of
    :func:`recognizer_args` and :func:`device_args` (with a communicator, a GPU request
    becomes the rank's own GPU)."""
    threshold = args.detection_threshold
    return {'device': rank_device(args.device, comm), 'backend': args.backend, 'tta': args.tta,
            'first_min_side': args.first_min_side, 'int8': args.int8,
            'nested_overlap': args.nested_overlap, 'classify_tta': bool(args.classify_tta),
            'class_threshold': args.class_threshold,
            'detection_threshold': (args.detection_threshold_name if threshold is None
                                    else threshold)}


def setup_logging(level: int = logging.INFO) -> None:
    """Log ``kr`` messages to stderr with a time stamp (once per process)."""
    root = logging.getLogger()
    if not any(getattr(h, '_kr_handler', False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s',
                                               '%H:%M:%S'))
        handler._kr_handler = True
        root.addHandler(handler)
    root.setLevel(level)


def setup_run(args: argparse.Namespace) -> dict:
    """Common start of every script: logging, the image size limit
    (``--max-image-pixels``), seeding when ``args.seed`` is set, and the run record.

    Nothing is written here: the script passes the record to its library function, which
    writes it as ``args.json`` (:func:`kr.runs.start_run`) once the inputs are checked, so
    a run that fails to start leaves the output folder as it was.

    Returns:
        dict: The run record (:func:`kr.runs.run_record`).
    """
    setup_logging()
    if getattr(args, 'max_image_pixels', None) is not None:
        set_max_image_pixels(args.max_image_pixels)
    record = run_record(vars(args))
    seed = getattr(args, 'seed', None)
    if seed is not None:
        seed_everything(seed)
    return record


def preset_settings(func, presets: dict, args: argparse.Namespace) -> dict:
    """The keyword arguments of ``func`` for ``args.preset`` and the flags given.

    Every parameter of ``func`` that ``args`` has is taken from it when not ``None`` (see
    :func:`kr.training.resolve_preset`); ``args`` is updated with the result, so the run's
    ``args.json`` records the settings actually used.
    """
    given = {k: v for k, v in vars(args).items() if k != 'preset'}
    settings = resolve_preset(func, presets, args.preset, **given)
    vars(args).update({k: v for k, v in settings.items() if k not in _NOT_SETTINGS})
    return settings


#: Parameters of the training functions that are not settings of the run.
_NOT_SETTINGS = ('run_record', 'comm')
#: Annotation -> argparse type of the flags :func:`add_settings_args` makes.
_FLAG_TYPES = {int: int, float: float, str: str}


def docstring_args(func) -> dict:
    """``{parameter: description}`` from the ``Args:`` section of ``func``'s docstring (the
    Google style of this code base), each description on one line."""
    doc = inspect.getdoc(func) or ''
    out, name, inside = {}, None, False
    for line in doc.splitlines():
        if not inside:
            inside = line.strip() == 'Args:'
            continue
        if line and not line.startswith(' '):
            break
        match = re.match(r'^    (\*{0,2}\w+)(?: \([^)]*\))?: ?(.*)$', line)
        if match:
            name = match.group(1).lstrip('*')
            out[name] = match.group(2).strip()
        elif name is not None and line.strip():
            out[name] += ' ' + line.strip()
    return out


def _show(value) -> str:
    return 'none' if value is None else str(value)


def add_settings_args(parser: argparse.ArgumentParser, func, presets: dict, preset: str,
                      title: str) -> None:
    """Document every setting of a training function on ``parser``, for a preset.

    Each keyword parameter of ``func`` without a flag on ``parser`` yet (and not one of
    ``run_record``, ``comm``) gets ``--its-name`` in a group ``title``, typed by its
    annotation (a ``bool`` becomes a switch), with its docstring description; the help of
    every setting, those already on ``parser`` too, ends with its default and the value
    ``preset`` gives it. Every flag defaults to ``None`` (not given), so
    :func:`preset_settings` can tell an explicit value from the preset's.

    Raises:
        ValueError: An unknown preset (the choices are named).
    """
    if preset not in presets:
        raise ValueError('unknown preset {!r} (--preset): choose one of {}'.format(
            preset, ', '.join(sorted(presets))))
    params = inspect.signature(func).parameters
    defaults = function_defaults(func)
    chosen = dict(defaults, **presets[preset])
    docs = docstring_args(func)
    existing = {}
    for action in parser._actions:  # the first flag of a dest (not an alias such as --gpu)
        existing.setdefault(action.dest, action)
    group = None
    for name, param in params.items():
        if name in _NOT_SETTINGS or name not in defaults:
            continue
        differs = chosen[name] != defaults[name]
        preset_part = 'preset {}: {}'.format(preset, _show(chosen[name]))
        suffix = '(default: {}{})'.format(_show(defaults[name]),
                                          '; ' + preset_part if differs else '')
        if name in existing:
            action = existing[name]
            if action.help is argparse.SUPPRESS:
                continue
            if '(default' not in (action.help or ''):
                action.help = '{} {}'.format(action.help or '', suffix).strip()
            elif differs:
                action.help = '{} ({})'.format(action.help, preset_part)
            continue
        if group is None:
            group = parser.add_argument_group(title)
        flag = '--' + name.replace('_', '-')
        description = docs.get(name, '').replace('%', '%%')
        help_text = '{} {}'.format(description, suffix).strip()
        kind = param.annotation if param.annotation is not inspect.Parameter.empty \
            else type(defaults[name])
        if kind is bool:
            group.add_argument(flag, dest=name, action='store_true', default=None,
                               help=help_text)
            group.add_argument('--no-' + flag[2:], dest=name, action='store_false',
                               help=argparse.SUPPRESS)
        else:
            group.add_argument(flag, dest=name, type=_FLAG_TYPES.get(kind, str), default=None,
                               help=help_text)
