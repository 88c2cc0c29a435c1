"""Write a whole synthetic dataset in the Kaggle "Kuzushiji Recognition" layout.

::

    out/train.csv                 image_id,labels   ("U+XXXX x y w h ...", empty for blank pages)
    out/train_images/<id>.jpg
    out/test_images/<id>.jpg
    out/unicode_translation.csv   Unicode,char      (sorted by code point; some never occur)
    out/sample_submission.csv     image_id,labels   (Kaggle's placeholder labels)
    out/test_labels.csv           test ground truth, same format as train.csv
    out/test_reading_order.json   per test page, per labelled character in label order: its
                                  block, main column and ruby flag (labelled annotation
                                  columns); and the main text (one line per column, those
                                  left out). The unlabelled ruby beside kanji is in neither.
    out/synthetic_info.json       seed, counts, page size, fonts (and those of each page),
                                  vocabulary statistics

Fonts: the bundled IPAexGothic and, by default, the brush fonts of
:data:`kr.synthetic.fonts.BRUSH_FONTS` found on the machine; a book is written in one of them
(cursive and brush hands most often, each font in its share of the books of each split), and
a character its font lacks in another. The data
are byte-identical for a seed on machines with the same fonts.

Pages are grouped in books (several pages each, one look per book); the book title is the
first token of an image id split on ``_`` and ``-``, and test books never appear in train.
Every page has its own generator spawned from ``numpy.random.SeedSequence(seed)``, so the
files are byte-identical for a seed whatever the number of worker processes.
"""

import collections
import concurrent.futures
import csv
import dataclasses
import logging
import multiprocessing
import os

import cv2
import numpy as np

import kr
from kr import fileio
from kr.progress import progress
from kr.synthetic import fonts as fonts_lib
from kr.synthetic import render
from kr.synthetic.page import EMPTY_PAGE_RATE
from kr.synthetic.page import render_page
from kr.synthetic.page import sample_book_style
from kr.synthetic.vocabulary import DEFAULT_N_CLASSES
from kr.synthetic.vocabulary import make_vocabulary

logger = logging.getLogger(__name__)

#: Where ``scripts/00_make_synthetic_dataset.py`` writes by default.
DEFAULT_OUT = os.path.join('data', 'kuzushiji-recognition-synthetic')
#: Default sizes: enough for the whole pipeline to train something in minutes on a CPU.
DEFAULT_TRAIN_PAGES = 200
DEFAULT_TEST_PAGES = 50
#: Page height in pixels; about 0.4 of the real 3,900 px, so that CPU runs stay fast.
DEFAULT_PAGE_HEIGHT = 1500
#: Smallest page height accepted (the layout needs a few characters of at least 8 px).
MIN_PAGE_HEIGHT = 128
#: Fixed JPEG quality: the output must not depend on library defaults.
JPEG_QUALITY = 90
#: Pages per book. The real books have from a handful to hundreds of pages, but a book here
#: is one font and one look (ink, paper, size, layout), so short books are what give a
#: training set of a few hundred pages each hand in several books: with 120 pages in books of
#: 4-24 a font met 2 training books on average, and a test book's hand was often new.
PAGES_PER_BOOK_RANGE = (2, 8)
#: Fewest books per split when there are enough pages: the group 4-fold split by book
#: (scripts/01_split_train_val.py) needs at least 4, and 8 keeps its folds balanced.
MIN_BOOKS = 8
#: Labels of every row of Kaggle's sample_submission.csv.
SAMPLE_SUBMISSION_LABELS = 'U+003F 1 1 U+FF2F 2 2'
#: How many of the most frequent classes synthetic_info.json lists.
N_TOP_CLASSES = 12
#: The reading-order ground truth of the test pages (SPEC section 12), beside test_labels.csv.
READING_ORDER_JSON = 'test_reading_order.json'
READING_ORDER_VERSION = 1

_WORKER = {}


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError('{} (--{}) must be an integer >= {}, got {!r}'.format(
            name, name.replace('_', '-'), minimum, value))
    return int(value)


def _check_out(out: str, overwrite: bool) -> str:
    """Fail early, naming ``out``, when the dataset could not be written there."""
    out = os.path.abspath(out)
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ValueError('out (--out) {} exists and is not a folder'.format(out))
        if not overwrite:
            raise FileExistsError(
                'out (--out) {} already exists; pass --overwrite (overwrite=True) to replace it'
                .format(out))
    probe = os.path.dirname(out)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise NotADirectoryError('out (--out) {}: {} is a file, not a folder'.format(out, probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError('out (--out) {}: cannot create files in {}'.format(out, probe))
    return out


def _book_title(index: int) -> str:
    """Titles in both of the real id styles: ``syn000004`` (numeric ids) or ``synb005``."""
    return 'syn{:06d}'.format(index) if index % 2 == 0 else 'synb{:03d}'.format(index)


def _image_id(index: int, page: int) -> str:
    """``syn000004_00012_1`` (leaf and side, like ``100241706_00004_2``) or ``synb005-012``."""
    title = _book_title(index)
    if index % 2 == 0:
        return '{}_{:05d}_{}'.format(title, page // 2 + 1, page % 2 + 1)
    return '{}-{:03d}'.format(title, page + 1)


def _plan_books(rng, n_pages):
    """Split ``n_pages`` into books; returns the page count of each book.

    Books are kept small enough that a split has at least ``min(n_pages, MIN_BOOKS)`` of them.
    """
    cap = max(1, -(-n_pages // MIN_BOOKS))   # ceil(n_pages / MIN_BOOKS)
    high = min(PAGES_PER_BOOK_RANGE[1], cap)
    low = min(PAGES_PER_BOOK_RANGE[0], high)
    books = []
    left = n_pages
    while left > 0:
        n = int(min(left, rng.integers(low, high + 1)))
        books.append(n)
        left -= n
    return books


def _init_worker(font_paths, n_classes, page_height, styles=None, coverage=None):
    """Per-process state: one glyph renderer (with its cache) and the vocabulary."""
    _WORKER['renderer'] = render.GlyphRenderer(font_paths, styles=styles, coverage=coverage)
    _WORKER['vocabulary'] = make_vocabulary(n_classes)
    _WORKER['page_height'] = page_height


def _init_pool_worker(*args):
    # Each process draws whole pages; OpenCV's own threads would only compete for the cores.
    cv2.setNumThreads(1)
    _init_worker(*args)


def _render_task(task):
    """Render one page, write its JPEG, return its label row and statistics."""
    rng = np.random.default_rng(task['seed'])
    page = render_page(rng, page_height=_WORKER['page_height'],
                       vocabulary=_WORKER['vocabulary'], renderer=_WORKER['renderer'],
                       style=task['style'], empty=task['empty'])
    ok, data = cv2.imencode('.jpg', cv2.cvtColor(page.image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError('JPEG encoding failed for {}'.format(task['image_id']))
    with open(task['path'], 'wb') as f:
        f.write(data.tobytes())
    return {'image_id': task['image_id'], 'labels': page.labels, 'unicodes': page.unicodes,
            'width': int(page.image.shape[1]), 'reading_order': _reading_order(page),
            'fonts': list(page.fonts), 'ruby_groups': int(len(page.ruby_bboxes))}


def _reading_order(page) -> dict:
    """Block, main column and ruby flag of each labelled character, and the main text.

    A synthetic page has one text block. A labelled annotation column glosses the main
    column on its right, the one labelled just before it, gets that column's number and
    ``ruby: true``, and stays out of the main text. The unlabelled ruby beside the kanji is
    not a labelled character, so it appears nowhere here (neither in the per-character lists
    nor in the text), as it is absent from the Kaggle labels.
    """
    ruby = [bool(r) for r in page.ruby]
    column, lines = [], []
    main_column, previous = -1, None
    for c, r, u in zip(page.columns.tolist(), ruby, page.unicodes):
        if not r and c != previous:
            main_column += 1
            previous = c
            lines.append('')
        column.append(max(main_column, 0))
        if not r:
            lines[-1] += chr(int(u[2:], 16))
    return {'block': [0] * len(ruby), 'column': column, 'ruby': ruby, 'text': '\n'.join(lines)}


def _write_csv(path, header, rows):
    with open(path, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(header)
        writer.writerows(rows)


def _resolve_fonts(vocabulary, extra_fonts, system_fonts, brush_fonts, font_dirs):
    """Font paths (bundled first, no file twice), their hands, and their coverage."""
    paths = [fonts_lib.bundled_font_path()]
    if brush_fonts:
        found = fonts_lib.find_brush_fonts(font_dirs)
        if not found:
            logger.warning(
                'no brush fonts found in %s: the synthetic pages use the bundled IPAexGothic '
                'only, a print font that looks little like kuzushiji. Install %s (Debian/'
                'Ubuntu: `sudo apt-get install %s`, or `make install-fonts` as root).',
                ', '.join(font_dirs), ', '.join(fonts_lib.BRUSH_FONT_PACKAGES),
                ' '.join(fonts_lib.BRUSH_FONT_PACKAGES))
        paths.extend(found)
    for path in extra_fonts:
        paths.append(fonts_lib.check_font(path, vocabulary.chars, argument='--font'))
    if system_fonts:
        paths.extend(fonts_lib.find_system_fonts(vocabulary.chars, font_dirs))
    unique = []
    for p in paths:
        if os.path.realpath(p) not in {os.path.realpath(q) for q in unique}:
            unique.append(p)
    styles = [fonts_lib.font_style(p) for p in unique]
    rows = fonts_lib.font_coverage(unique, vocabulary.chars)
    coverage = {c: tuple(row[i] for row in rows) for i, c in enumerate(vocabulary.chars)}
    for p, row in zip(unique, rows):
        if not all(row):
            logger.info('font %s lacks %d of the %d vocabulary characters (%s): they are '
                        'drawn with other fonts', os.path.basename(p), row.count(False),
                        len(row), ''.join(c for c, ok in zip(vocabulary.chars, row) if not ok))
    return unique, styles, coverage


def make_synthetic_dataset(out: str = DEFAULT_OUT, *, train_pages: int = DEFAULT_TRAIN_PAGES,
                           test_pages: int = DEFAULT_TEST_PAGES, seed: int = 0,
                           workers: int = 2, overwrite: bool = False,
                           page_height: int = DEFAULT_PAGE_HEIGHT,
                           n_classes: int = DEFAULT_N_CLASSES,
                           empty_page_rate: float = EMPTY_PAGE_RATE,
                           fonts=(), system_fonts: bool = False, brush_fonts: bool = True,
                           font_dirs=fonts_lib.SYSTEM_FONT_DIRS) -> dict:
    """Generate a synthetic kuzushiji dataset in the Kaggle layout (see the module doc).

    The folder is built under a temporary name and moved to ``out`` only when complete
    (:func:`kr.fileio.atomic_directory`).

    Args:
        out: Dataset folder to create.
        train_pages: Number of training pages (>= 1).
        test_pages: Number of test pages (>= 1), from books not in train.
        seed: Seed (>= 0); the same seed gives byte-identical files.
        workers: Processes rendering pages (1 renders in this process).
        overwrite: Replace an existing ``out``.
        page_height: Page height in pixels; widths are 0.62-0.71 of it.
        n_classes: Rows of unicode_translation.csv; about 12 % of them never occur.
        empty_page_rate: Share of pages (per split, rounded) without any character.
        fonts: Extra font files (each must draw some vocabulary characters; those it
            lacks are drawn with other fonts).
        system_fonts: Also use installed fonts that draw the whole vocabulary.
        brush_fonts: Use the brush fonts of :data:`kr.synthetic.fonts.BRUSH_FONTS` found in
            ``font_dirs`` (a warning says when there are none).
        font_dirs: Folders searched for brush and system fonts.

    Returns:
        dict: What was written to synthetic_info.json.

    Raises:
        ValueError: A count, the page height or the rate is out of range, or a font is bad.
        FileExistsError: ``out`` exists and ``overwrite`` is false.
        FileNotFoundError: A font file (or the bundled font) is missing.
        PermissionError, NotADirectoryError: ``out`` cannot be created.
    """
    train_pages = _check_count('train_pages', train_pages)
    test_pages = _check_count('test_pages', test_pages)
    workers = _check_count('workers', workers)
    seed = _check_count('seed', seed, minimum=0)
    page_height = _check_count('page_height', page_height, minimum=MIN_PAGE_HEIGHT)
    if not 0.0 <= empty_page_rate <= 1.0:
        raise ValueError('empty_page_rate must be in [0, 1], got {}'.format(empty_page_rate))
    if isinstance(fonts, str):
        fonts = [fonts]
    out = _check_out(out, overwrite)
    vocabulary = make_vocabulary(n_classes)
    font_paths, font_styles, coverage = _resolve_fonts(vocabulary, fonts, system_fonts,
                                                       brush_fonts, list(font_dirs))
    font_weights = fonts_lib.style_weights(font_styles)

    # Plan books and pages from their own stream so that the plan never depends on the pages.
    plan_ss, books_ss = np.random.SeedSequence(seed).spawn(2)
    plan_rng = np.random.default_rng(plan_ss)
    splits = (('train', train_pages), ('test', test_pages))
    book_sizes = {name: _plan_books(plan_rng, n) for name, n in splits}
    empties = {}
    for name, n in splits:
        n_empty = int(round(n * empty_page_rate))
        empties[name] = set(plan_rng.choice(n, size=n_empty, replace=False).tolist())
    fonts_of_books = {name: fonts_lib.book_fonts(plan_rng, len(book_sizes[name]), font_weights)
                      for name, _ in splits}
    n_books = sum(len(v) for v in book_sizes.values())
    book_seeds = books_ss.spawn(n_books)

    tasks = {name: [] for name, _ in splits}
    book_index = 0
    with fileio.atomic_directory(out, overwrite=overwrite) as tmp:
        for name, _ in splits:
            image_dir = os.path.join(tmp, '{}_images'.format(name))
            os.makedirs(image_dir)
            page_in_split = 0
            for n, font_index in zip(book_sizes[name], fonts_of_books[name]):
                style_ss, *page_seeds = book_seeds[book_index].spawn(1 + n)
                # The split's systematic draw of fonts (book_fonts) replaces the style's own;
                # the style still draws one, so that its other settings keep their streams.
                style = dataclasses.replace(
                    sample_book_style(np.random.default_rng(style_ss), len(font_paths),
                                      font_weights), font_index=font_index)
                for page in range(n):
                    image_id = _image_id(book_index, page)
                    tasks[name].append({
                        'image_id': image_id, 'seed': page_seeds[page], 'style': style,
                        'empty': page_in_split in empties[name],
                        'path': os.path.join(image_dir, image_id + '.jpg')})
                    page_in_split += 1
                book_index += 1

        all_tasks = tasks['train'] + tasks['test']
        logger.info('rendering %d train + %d test pages (%d books, %d fonts) with %d worker(s)',
                    train_pages, test_pages, n_books, len(font_paths), workers)
        if workers == 1:
            _init_worker(font_paths, len(vocabulary), page_height, font_styles, coverage)
            try:
                results = [_render_task(t) for t in progress(all_tasks, desc='pages')]
            finally:
                _WORKER.clear()   # release the glyph cache
        else:
            # 'spawn': workers start clean (no copied OpenCV thread pools or locks).
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=min(workers, len(all_tasks)),
                mp_context=multiprocessing.get_context('spawn'), initializer=_init_pool_worker,
                initargs=(font_paths, len(vocabulary), page_height, font_styles, coverage))
            try:
                results = list(progress(pool.map(_render_task, all_tasks), total=len(all_tasks),
                                        desc='pages'))
            except BaseException:
                # Stop at once on an error or Ctrl-C instead of rendering the queued pages.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        train_results = results[:train_pages]
        test_results = results[train_pages:]

        _write_csv(os.path.join(tmp, 'train.csv'), ('image_id', 'labels'),
                   [(r['image_id'], r['labels']) for r in train_results])
        _write_csv(os.path.join(tmp, 'test_labels.csv'), ('image_id', 'labels'),
                   [(r['image_id'], r['labels']) for r in test_results])
        _write_csv(os.path.join(tmp, 'sample_submission.csv'), ('image_id', 'labels'),
                   [(r['image_id'], SAMPLE_SUBMISSION_LABELS) for r in test_results])
        _write_csv(os.path.join(tmp, 'unicode_translation.csv'), ('Unicode', 'char'),
                   vocabulary.table())
        fileio.write_json(os.path.join(tmp, READING_ORDER_JSON), {
            'format_version': READING_ORDER_VERSION,
            'pages': [dict(image_id=r['image_id'], **r['reading_order']) for r in test_results]})
        info = _summary(seed, page_height, font_paths, font_styles, vocabulary, book_sizes,
                        train_results, test_results)
        fileio.write_json(os.path.join(tmp, 'synthetic_info.json'), info)
    logger.info('wrote %s: %d pages, %d characters, %d classes occurring', out,
                train_pages + test_pages,
                info['characters']['train'] + info['characters']['test'],
                info['vocabulary']['classes_occurring'])
    return info


def _summary(seed, page_height, font_paths, font_styles, vocabulary, book_sizes, train_results,
             test_results):
    """The content of synthetic_info.json (no paths, no times: it must be reproducible)."""
    def counts(results):
        c = collections.Counter()
        for r in results:
            c.update(r['unicodes'])
        return c

    train_counts, test_counts = counts(train_results), counts(test_results)
    chars_per_page = [len(r['unicodes']) for r in train_results + test_results]
    widths = [r['width'] for r in train_results + test_results]
    char_of = {u: c for u, c in vocabulary.table()}
    occurring = set(train_counts) | set(test_counts)
    train_values = sorted(train_counts.values())
    names = [os.path.basename(p) for p in font_paths]
    return {
        'seed': seed,
        'kr_version': kr.__version__,
        'pages': {'train': len(train_results), 'test': len(test_results)},
        'books': {'train': len(book_sizes['train']), 'test': len(book_sizes['test'])},
        'empty_pages': {'train': sum(1 for r in train_results if not r['unicodes']),
                        'test': sum(1 for r in test_results if not r['unicodes'])},
        'characters': {'train': sum(train_counts.values()), 'test': sum(test_counts.values())},
        'characters_per_page': {'min': min(chars_per_page), 'max': max(chars_per_page),
                                'mean': round(float(np.mean(chars_per_page)), 1)},
        'page_height': page_height,
        'page_width': {'min': min(widths), 'max': max(widths)},
        'jpeg_quality': JPEG_QUALITY,
        'fonts': names,
        'font_styles': dict(zip(names, font_styles)),
        # Fonts drawn with on each page (its book's font, and any drawn in its place).
        'page_fonts': {r['image_id']: [names[i] for i in r['fonts']]
                       for r in train_results + test_results},
        'ruby_groups': {'train': sum(r['ruby_groups'] for r in train_results),
                        'test': sum(r['ruby_groups'] for r in test_results)},
        'vocabulary': {
            'classes_in_mapping': len(vocabulary),
            'classes_with_nonzero_frequency': len(vocabulary.used_chars),
            'classes_occurring': len(occurring),
            'classes_occurring_train': len(train_counts),
            'classes_occurring_test': len(test_counts),
            'median_train_count_of_occurring_class': (
                float(np.median(train_values)) if train_values else 0.0),
            'top_train_classes': [[u, char_of[u], n]
                                  for u, n in sorted(train_counts.items(),
                                                     key=lambda kv: (-kv[1], kv[0]))
                                  [:N_TOP_CLASSES]],
        },
    }
