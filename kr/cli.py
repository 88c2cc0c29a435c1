"""Pieces shared by the numbered scripts: argument parents, run setup, progress logging.

A script builds its parser from the parents here (``data_args``, ``device_args``,
``output_args``), calls :func:`setup_run`, then one library function.
"""

import argparse
import logging
import os
import platform
import random
import sys
import time

import numpy as np

from kr import fileio

logger = logging.getLogger(__name__)

#: Where the real Kaggle data is unpacked (the original README's layout).
DEFAULT_DATA_DIR = os.path.join('data', 'kuzushiji-recognition')
#: Environment variable that overrides :data:`DEFAULT_DATA_DIR`.
DATA_DIR_ENV = 'KR_DATA_DIR'


def default_data_dir() -> str:
    """``$KR_DATA_DIR`` when set and not empty, else ``data/kuzushiji-recognition``."""
    return os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR


def derived_dir(data_dir: str, suffix: str) -> str:
    """A folder beside ``data_dir`` named after it, e.g. ``data/x`` -> ``data/x-gsplit``."""
    return os.path.normpath(data_dir).rstrip(os.sep) + suffix


def default_split_dir(data_dir: str) -> str:
    """Default output of script 01: ``<data_dir>-gsplit``."""
    return derived_dir(data_dir, '-gsplit')


def default_crop_dir(data_dir: str) -> str:
    """Default output of script 02: ``<data_dir>-crops``."""
    return derived_dir(data_dir, '-crops')


def data_args() -> argparse.ArgumentParser:
    """Parent parser with ``--data-dir`` and ``--split-dir``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--data-dir', default=default_data_dir(),
                   help='Kaggle-layout data folder (default: $%s, else %s; currently %%(default)s)'
                   % (DATA_DIR_ENV, DEFAULT_DATA_DIR))
    p.add_argument('--split-dir', default=None,
                   help='train/val split CSVs written by scripts/01_split_train_val.py '
                        '(default: <data-dir>-gsplit)')
    return p


def parse_device(spec):
    """Turn a ``--device`` string into what :func:`chainer.get_device` takes.

    ``'-1'`` (CPU) and ``'0'`` (GPU 0) become integers, as the original ``--gpu`` flag used;
    anything else (``'@numpy'``, ``'@cupy:0'``) is passed through.
    """
    if isinstance(spec, int):
        return spec
    try:
        return int(spec)
    except ValueError:
        return spec


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


def model_args() -> argparse.ArgumentParser:
    """Parent parser with the positional ``detector`` and ``classifier`` weights (05, 07, 10)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('detector', help="detector weights (model_<epoch>.npz of script 03, with "
                                    "the run's args.json beside it)")
    p.add_argument('classifier', help="classifier weights (model_<epoch>.npz of script 04 or 06, "
                                      "with the run's args.json beside it)")
    return p


def recognizer_args(detection_threshold: float, class_threshold: float) -> argparse.ArgumentParser:
    """Parent parser of the scripts that recognise pages (05, 07): the two models, thresholds,
    ``--no-tta`` and ``--backend``."""
    p = argparse.ArgumentParser(add_help=False, parents=[model_args()])
    p.add_argument('--detection-threshold', type=float, default=detection_threshold,
                   help='detector probability threshold (default: %(default)s)')
    p.add_argument('--class-threshold', type=float, default=class_threshold,
                   help='classifier probability threshold (default: %(default)s)')
    p.add_argument('--no-tta', dest='tta', action='store_false',
                   help='one detection pass instead of adaptive-scale test-time augmentation')
    p.add_argument('--backend', choices=('chainer', 'onnxruntime'), default='chainer',
                   help='run the models with Chainer, or export them to ONNX and run them with '
                        'ONNX Runtime (CPU; needs the onnx extra) (default: %(default)s)')
    return p


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


def versions() -> dict:
    """Versions of the pieces that decide results: Python, NumPy, Chainer, CuPy, ``kr``."""
    import kr
    out = {'python': platform.python_version(), 'numpy': np.__version__, 'kr': kr.__version__}
    try:
        import chainer
        out['chainer'] = chainer.__version__
    except ImportError:  # pragma: no cover - chainer is a hard dependency
        out['chainer'] = None
    try:
        import cupy
        out['cupy'] = cupy.__version__
    except Exception:  # CuPy missing or without a usable CUDA
        out['cupy'] = None
    return out


def seed_everything(seed: int) -> None:
    """Seed :mod:`random`, NumPy and (when importable) CuPy."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import cupy
        cupy.random.seed(seed)
    except Exception:
        pass


def run_record(args: argparse.Namespace) -> dict:
    """What ``args.json`` holds: the arguments, the command line, the time and the versions."""
    record = dict(vars(args))
    record['argv'] = list(sys.argv)
    record['time'] = time.strftime('%Y-%m-%dT%H:%M:%S')
    record['versions'] = versions()
    return record


def setup_run(args: argparse.Namespace, out_attr: str = 'out') -> dict:
    """Common start of every script that writes files.

    Configures logging, creates ``args.<out_attr>`` and writes ``args.json`` there (see
    :func:`run_record`), and seeds the random generators when ``args.seed`` is set.

    Args:
        args: Parsed arguments.
        out_attr: Attribute naming the output folder; ``None`` for scripts whose output
            folder is created whole by the library (they pass the returned record on).

    Returns:
        dict: The run record written (or to be written) as ``args.json``.
    """
    setup_logging()
    record = run_record(args)
    out = getattr(args, out_attr, None) if out_attr else None
    if out:
        os.makedirs(out, exist_ok=True)
        fileio.write_json(os.path.join(out, 'args.json'), record)
    seed = getattr(args, 'seed', None)
    if seed is not None:
        seed_everything(seed)
    return record


def progress(iterable, total: int = None, desc: str = '', log_every: int = None):
    """Iterate with a progress bar on a terminal, or ``desc i/n`` log lines otherwise.

    Args:
        iterable: What to iterate over.
        total: Number of items (defaults to ``len(iterable)`` when it has one).
        desc: Label of the bar or the log lines.
        log_every: Log every this many items when not on a terminal (default: about 20 lines).
    """
    if total is None and hasattr(iterable, '__len__'):
        total = len(iterable)
    if sys.stderr.isatty():
        from tqdm import tqdm
        yield from tqdm(iterable, total=total, desc=desc, dynamic_ncols=True)
        return
    if log_every is None:
        log_every = max(1, (total or 100) // 20)
    start = time.time()
    i = 0
    for i, item in enumerate(iterable, 1):
        yield item
        if i % log_every == 0 or i == total:
            logger.info('%s %d/%s (%.1f s)', desc, i, total if total is not None else '?',
                        time.time() - start)
