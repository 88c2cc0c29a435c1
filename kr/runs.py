"""Run folders: what a run records (``args.json``), how it is read back, and seeding.

Every training run writes ``args.json`` beside its weights: the settings actually used,
the command line and the versions of the pieces that decide results. Loading a model
(:func:`kr.detector.load_detector`, :func:`kr.classifier.load_classifier`), finetuning
and the ONNX export read it back through :func:`read_run_args` alone.
"""

import json
import os
import pickle
import platform
import random
import sys
import time
import zipfile

import numpy as np

from kr import fileio

#: The run record written into every output folder.
RUN_ARGS = 'args.json'
#: Weights a training run writes when it ends, whatever its length (what the next script takes).
FINAL_MODEL = 'model_final.npz'


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


def run_record(settings: dict) -> dict:
    """What ``args.json`` holds: ``settings``, the command line, the time and the versions."""
    record = dict(settings)
    record['argv'] = list(sys.argv)
    record['time'] = time.strftime('%Y-%m-%dT%H:%M:%S')
    record['versions'] = versions()
    return record


def start_run(out: str, record: dict = None, finished_ok: bool = True) -> str:
    """Create a run's output folder and write its ``args.json``: called by the library once
    the inputs are checked, so that a run that fails to start changes nothing.

    Args:
        out: The output folder (created with its parents).
        record: Written as ``out/args.json`` (``None``: nothing is written).
        finished_ok: Whether ``out`` may already hold a finished training run
            (``model_final.npz``); trainings pass ``False`` unless they resume.

    Returns:
        str: ``out``.

    Raises:
        ValueError: ``out`` is a file, or holds a finished run that must not be replaced.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError('--out {} is a file, not a folder: choose a folder'.format(out))
    if not finished_ok and os.path.isfile(os.path.join(out, FINAL_MODEL)):
        raise ValueError('{} already holds a finished run ({}): choose another --out, or '
                         'continue it with --resume <snapshot>'.format(out, FINAL_MODEL))
    os.makedirs(out, exist_ok=True)
    if record is not None:
        fileio.write_json(os.path.join(out, RUN_ARGS), record)
    return out


def seed_everything(seed: int) -> None:
    """Seed :mod:`random`, NumPy's global generator and (when importable) CuPy's."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import cupy
        cupy.random.seed(seed)
    except Exception:
        pass


def run_dir(model_path: str) -> str:
    """The run folder of a weight file: the folder it lies in."""
    return os.path.dirname(os.path.abspath(model_path))


def run_args_path(model_path: str) -> str:
    """``args.json`` beside a weight file."""
    return os.path.join(run_dir(model_path), RUN_ARGS)


def read_run_args(model_path: str, args_path: str = None, what: str = 'model') -> dict:
    """The ``args.json`` of the run that wrote ``model_path``.

    Args:
        model_path: A weight file (``model_final.npz``, ``model_<epoch>.npz``).
        args_path: The record to read instead of the one beside ``model_path``.
        what: What the weights are, for the messages (``'detector'``, ``'classifier'``).

    Raises:
        FileNotFoundError: The weights or the record are missing (both named).
        ValueError: The record is not a JSON object (named).
    """
    if not os.path.isfile(model_path):
        raise FileNotFoundError('{} weights not found: {}'.format(what, model_path))
    args_path = args_path or run_args_path(model_path)
    if not os.path.isfile(args_path):
        raise FileNotFoundError(
            '{} not found: the training run that wrote {} records its settings there '
            '(pass args_path to read another)'.format(args_path, model_path))
    try:
        with open(args_path, encoding='utf-8') as f:
            record = json.load(f)
    except ValueError as e:
        raise ValueError('{} is not valid JSON ({})'.format(args_path, e)) from None
    if not isinstance(record, dict):
        raise ValueError('{} does not hold a JSON object'.format(args_path))
    return record


def load_weights(model_path: str, model, what: str = 'model') -> None:
    """``chainer.serializers.load_npz(model_path, model)`` with an error naming the file.

    Raises:
        FileNotFoundError: ``model_path`` is missing.
        ValueError: The file is not a weight file of this architecture (a trainer
            snapshot, the other model's weights, a truncated or empty file).
    """
    import chainer
    if not os.path.isfile(model_path):
        raise FileNotFoundError('{} weights not found: {}'.format(what, model_path))
    try:
        chainer.serializers.load_npz(model_path, model)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile,
            pickle.UnpicklingError) as e:
        raise ValueError('cannot load {} as {} weights: {} ({}); give a model_*.npz written by '
                         'a run of this kind, with its args.json beside it'.format(
                             model_path, what, type(e).__name__,
                             str(e).strip("'") or 'unreadable')) from None
