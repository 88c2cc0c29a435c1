"""Recognise page images into files in reading order (the library side of ``kr recognize``).

For every image (files, or folders walked in sorted order) it writes, under the output
folder, ``<name>.txt``, ``<name>.json``, ``<name>.tei.xml`` and ``<name>.png`` (the formats
asked for; see :mod:`kr.reading.formats`). A folder's tree is mirrored under the output
folder. A page's files are written whole or not at all, a page whose files all exist is
skipped (unless ``overwrite``), and an image that cannot be read is named, skipped and
reported at the end while the other pages go on.
"""

import contextlib
import dataclasses
import logging
import os

import numpy as np
from PIL import Image
from PIL import ImageOps

from kr import fileio
from kr.datasets.image import open_image
from kr.datasets.image import to_8bit_grey
from kr.datasets.image import WIDE_MODES
from kr.progress import progress
from kr.reading import formats as formats_lib

logger = logging.getLogger(__name__)

#: Image files a folder walk takes (a file named on the command line is tried whatever
#: its extension).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp', '.webp')
#: Output formats and the suffix each one adds to a page's name.
FORMATS = {'txt': '.txt', 'json': '.json', 'tei': '.tei.xml', 'png': '.png'}
DEFAULT_FORMATS = ('txt', 'json', 'tei', 'png')


@dataclasses.dataclass
class PagesResult:
    """What :func:`recognize_pages` did.

    Attributes:
        done: Images recognised and written.
        skipped: Images whose files were already there.
        failed: ``(image, reason)`` of the images that could not be read.
    """
    done: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)


def parse_formats(value) -> tuple:
    """``'txt,json'`` (or a list of names) -> ``('txt', 'json')``, checked.

    Raises:
        ValueError: An unknown or missing format (``--format`` and the choices named).
    """
    names = value.split(',') if isinstance(value, str) else list(value)
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError('--format {!r}: choose from {} (comma-separated)'.format(
            value, ','.join(FORMATS)))
    return tuple(dict.fromkeys(names))


def find_images(inputs) -> list:
    """The images of ``inputs`` and the name of each one's files under the output folder.

    Args:
        inputs: Image files and folders. A folder is walked (sorted, hidden entries left
            out) for files with an :data:`IMAGE_EXTENSIONS` extension; its images are named
            by their path inside it, so its tree is mirrored.

    Returns:
        list of ``(path, name)``; ``name`` has no extension (``'sub/page_001'``).

    Raises:
        FileNotFoundError: An input does not exist (named).
        ValueError: Two images would write the same files (both named).
    """
    if isinstance(inputs, str):
        inputs = [inputs]
    found = []
    for given in inputs:
        if os.path.isdir(given):
            for root, dirs, files in os.walk(given):
                dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
                for name in sorted(files):
                    if name.startswith('.') or not name.lower().endswith(IMAGE_EXTENSIONS):
                        continue
                    path = os.path.join(root, name)
                    found.append((path, os.path.splitext(os.path.relpath(path, given))[0]))
        elif os.path.isfile(given):
            found.append((given, os.path.splitext(os.path.basename(given))[0]))
        else:
            raise FileNotFoundError('input {} not found (give image files or folders)'.format(
                given))
    seen = {}
    for path, name in found:
        if name in seen:
            raise ValueError('{} and {} would write the same files ({}.*): rename one or '
                             'recognise them into different --out folders'.format(
                                 seen[name], path, name))
        seen[name] = path
    return found


def load_page_image(path: str) -> np.ndarray:
    """Read a page image of any colour mode as ``(H, W, 3)`` uint8 RGB.

    The EXIF orientation is applied; 16-bit and float grey images are scaled to 8 bits;
    transparent pixels are laid on white; a multi-page TIFF gives its first page.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file cannot be decoded, or is larger than
            :data:`kr.datasets.image.MAX_IMAGE_PIXELS` (named, with the reason).
    """
    with open_image(path) as img:
        img.load()
        return _to_rgb(ImageOps.exif_transpose(img))


def _to_rgb(img) -> np.ndarray:
    """Any PIL mode -> ``(H, W, 3)`` uint8 RGB."""
    if img.mode in WIDE_MODES:
        img = to_8bit_grey(img)
    if img.mode == 'P' and 'transparency' in img.info:
        img = img.convert('RGBA')
    if img.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
        rgba = img.convert('RGBA')
        white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert('RGB'), dtype=np.uint8)


def page_paths(out: str, name: str, formats=DEFAULT_FORMATS) -> dict:
    """``{format: path}`` of a page's files under ``out``."""
    return {f: os.path.join(out, name + FORMATS[f]) for f in formats}


def write_page_files(page, image, paths: dict, ruby: str = 'omit',
                     max_side: int = None) -> None:
    """Write a page's files all or none: each goes to a temporary name first, and all are
    renamed into place only once every one is complete.

    Args:
        page: :class:`kr.reading.formats.RecognizedPage`.
        image: Its ``(H, W, 3)`` uint8 RGB array (for the picture).
        paths: ``{format: path}`` (:func:`page_paths`).
        ruby: TXT ruby mode (:data:`kr.reading.formats.RUBY_MODES`).
        max_side: Longest side of the picture.
    """
    writers = {
        'txt': lambda p: formats_lib.write_text(page, p, ruby=ruby),
        'json': lambda p: formats_lib.write_json(page, p),
        'tei': lambda p: formats_lib.write_tei(page, p),
        'png': lambda p: formats_lib.write_picture(page, image, p, max_side=max_side),
    }
    for path in paths.values():
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with contextlib.ExitStack() as stack:
        for fmt, path in paths.items():
            writers[fmt](stack.enter_context(fileio.atomic_path(path)))


def recognize_pages(recognizer, inputs, out: str, formats=DEFAULT_FORMATS,
                    overwrite: bool = False, ruby: str = 'omit',
                    max_side: int = None, comm=None) -> PagesResult:
    """Recognise images into per-page files in reading order (see the module doc).

    Args:
        recognizer: A :class:`kr.inference.PageRecognizer` (or anything with
            ``recognize(image) -> characters``).
        inputs: Image files and folders (:func:`find_images`).
        out: Output folder (created).
        formats: Names of :data:`FORMATS`, or a comma-separated string.
        overwrite: Recognise pages whose files already exist again.
        ruby: TXT ruby mode, ``'omit'`` or ``'inline'``.
        max_side: Longest side of the pictures.
        comm: A ChainerMN communicator: rank ``r`` of ``N`` reads every ``N``-th image from
            ``r`` (each page's files are its own, so nothing is merged), and rank 0 returns
            the result of all ranks (the others return theirs).

    Returns:
        :class:`PagesResult`.

    Raises:
        FileNotFoundError: An input does not exist.
        ValueError: An unknown format or ruby mode, or two images with the same file name.
    """
    formats = parse_formats(formats)
    if ruby not in formats_lib.RUBY_MODES:
        raise ValueError('ruby (--ruby) must be one of {}, got {!r}'.format(
            ', '.join(formats_lib.RUBY_MODES), ruby))
    images = find_images(inputs)
    if comm is not None:
        images = images[comm.rank::comm.size]
    os.makedirs(out, exist_ok=True)
    result = PagesResult()
    for path, name in progress(images, desc='pages'):
        paths = page_paths(out, name, formats)
        if not overwrite and all(os.path.isfile(p) for p in paths.values()):
            result.skipped.append(path)
            continue
        try:
            image = load_page_image(path)
        except (FileNotFoundError, ValueError) as e:
            logger.error('%s', e)
            result.failed.append((path, str(e)))
            continue
        page = formats_lib.make_page(os.path.basename(path), (image.shape[1], image.shape[0]),
                                     recognizer.recognize(image))
        write_page_files(page, image, paths, ruby=ruby, max_side=max_side)
        result.done.append(path)
    if comm is not None:
        parts = comm.mpi_comm.gather(result, root=0)
        if comm.rank == 0:
            result = PagesResult(*([x for part in parts for x in getattr(part, field)]
                                   for field in ('done', 'skipped', 'failed')))
    logger.info('%d page(s) recognised, %d already done, %d unreadable; files in %s',
                len(result.done), len(result.skipped), len(result.failed), out)
    return result
