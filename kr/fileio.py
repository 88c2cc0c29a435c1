"""Writing files whole or not at all.

Every output of ``kr`` (CSV, JSON, images, whole dataset folders) goes through these helpers:
the data is written next to its destination under a temporary name and renamed into place
only when complete, so an interrupted run never leaves a half-written file behind.
"""

import contextlib
import glob
import json
import logging
import os
import shutil
import tempfile

logger = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_name(path: str, suffix: str = '') -> str:
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.{}.'.format(name), suffix='.tmp' + suffix, dir=directory)
    os.close(fd)
    # mkstemp makes the file 0600; a file written in place would get the user's umask
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary name keeps the extension of ``path`` so that writers that choose the
    format from the extension (OpenCV, Pillow, matplotlib) work unchanged.

    Args:
        path: Final destination. Its parent folder must exist.

    Yields:
        str: Where to write. Removed again if the block raises.
    """
    tmp = _temp_name(path, suffix=os.path.splitext(path)[1])
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'w', encoding: str = 'utf-8', newline: str = None):
    """Open a temporary file beside ``path`` and rename it to ``path`` on success.

    Args:
        path: Final destination. Its parent folder must exist.
        mode: ``'w'`` (text) or ``'wb'`` (binary).
        encoding: Text encoding; ignored in binary mode.
        newline: Passed to :func:`open` in text mode (``''`` for the csv module).

    Yields:
        file: The open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError("mode must be 'w' or 'wb', got {!r}".format(mode))
    with atomic_path(path) as tmp:
        kwargs = {} if 'b' in mode else {'encoding': encoding, 'newline': newline}
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def read_versioned_json(path: str, version: int, remedy: str) -> dict:
    """Read a JSON object whose ``format_version`` must be ``version``.

    Args:
        path: The file.
        version: The format version this ``kr`` reads.
        remedy: What the user should do when the file is missing or of another version
            (e.g. ``'export the models again with scripts/10_export_onnx.py'``).

    Raises:
        FileNotFoundError: ``path`` is missing (the remedy is named).
        ValueError: Another format version (both versions and the remedy are named).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('{} not found: {}'.format(path, remedy))
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    if data.get('format_version') != version:
        raise ValueError('{} has format version {}, this kr reads {}: {}'.format(
            path, data.get('format_version'), version, remedy))
    return data


def write_json(path: str, obj, indent: int = 2) -> None:
    """Write ``obj`` as UTF-8 JSON to ``path`` atomically (non-ASCII kept readable)."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write('\n')


def remove_stale_temporaries(path: str) -> list:
    """Remove what a killed run left beside ``path``: the hidden ``.<name>.*.tmp`` files and
    folders of :func:`atomic_path` and :func:`atomic_directory`, and the ``.<name>.*.old``
    folder a replacement was moving away (a run that ends normally, or by an exception,
    removes its own). Called by :func:`atomic_directory` before it builds ``path``.

    Returns:
        list: The paths removed.
    """
    directory, name = os.path.split(os.path.abspath(path))
    stale = sorted(item for pattern in ('.{}.*.tmp*', '.{}.*.old')
                   for item in glob.glob(os.path.join(glob.escape(directory),
                                                      pattern.format(glob.escape(name)))))
    for item in stale:
        if os.path.isdir(item) and not os.path.islink(item):
            shutil.rmtree(item, ignore_errors=True)
        else:
            os.remove(item)
    if stale:
        logger.info('removed %d unfinished temporary file(s) of an interrupted run beside %s',
                    len(stale), path)
    return stale


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False):
    """Build a folder under a temporary name and move it to ``path`` when complete.

    Args:
        path: Final folder.
        overwrite: Replace an existing ``path``. The old folder is removed only after the
            new one is complete.

    Yields:
        str: The temporary folder to fill. Removed if the block raises.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            '{} already exists; pass --overwrite to replace it'.format(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = tempfile.mkdtemp(prefix='.{}.'.format(os.path.basename(path)), suffix='.tmp',
                           dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix='.{}.'.format(os.path.basename(path)), suffix='.old',
                               dir=parent)
        os.rmdir(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
