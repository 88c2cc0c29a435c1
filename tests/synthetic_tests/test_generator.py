import csv
import json
import os
import re

import numpy as np
import pytest

from kr.synthetic import fonts
from kr.synthetic import generator
from kr.synthetic import make_synthetic_dataset

SMALL = dict(train_pages=10, test_pages=4, page_height=400, empty_page_rate=0.25)
FILES = ('train.csv', 'test_labels.csv', 'sample_submission.csv', 'unicode_translation.csv',
         'synthetic_info.json', 'test_reading_order.json')


def read_rows(path):
    with open(path, encoding='utf-8', newline='') as f:
        return list(csv.reader(f))


def all_bytes(folder):
    """{relative path: bytes} of every file under ``folder``."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def parse_labels(labels):
    tokens = labels.split()
    assert len(tokens) % 5 == 0
    return [(tokens[i], *map(int, tokens[i + 1:i + 5])) for i in range(0, len(tokens), 5)]


def book(image_id):
    return re.split('[_-]', image_id)[0]


@pytest.fixture(scope='module')
def font_dir(tmp_path_factory):
    """A font folder with one 'brush font' (a renamed copy of the bundled one), so that the
    data do not depend on the fonts of the machine."""
    folder = tmp_path_factory.mktemp('fonts')
    with open(fonts.bundled_font_path(), 'rb') as src:
        (folder / 'KouzanBrushFontSousyo.ttf').write_bytes(src.read())
    return str(folder)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory, font_dir):
    out = str(tmp_path_factory.mktemp('synthetic') / 'ds')
    info = make_synthetic_dataset(out, seed=0, workers=1, font_dirs=[font_dir], **SMALL)
    return out, info


def test_layout_and_headers(dataset):
    out, info = dataset
    assert sorted(os.listdir(out)) == sorted(FILES + ('train_images', 'test_images'))
    assert read_rows(os.path.join(out, 'train.csv'))[0] == ['image_id', 'labels']
    assert read_rows(os.path.join(out, 'test_labels.csv'))[0] == ['image_id', 'labels']
    assert read_rows(os.path.join(out, 'sample_submission.csv'))[0] == ['image_id', 'labels']
    assert read_rows(os.path.join(out, 'unicode_translation.csv'))[0] == ['Unicode', 'char']
    train = read_rows(os.path.join(out, 'train.csv'))[1:]
    test = read_rows(os.path.join(out, 'test_labels.csv'))[1:]
    assert len(train) == SMALL['train_pages'] and len(test) == SMALL['test_pages']
    assert sorted(os.listdir(os.path.join(out, 'train_images'))) == sorted(
        r[0] + '.jpg' for r in train)
    assert sorted(os.listdir(os.path.join(out, 'test_images'))) == sorted(
        r[0] + '.jpg' for r in test)
    # No leftovers of the atomic build beside the folder.
    assert os.listdir(os.path.dirname(out)) == ['ds']


def test_images_are_jpeg_pages(dataset):
    from PIL import Image
    out, _ = dataset
    name = sorted(os.listdir(os.path.join(out, 'train_images')))[0]
    with Image.open(os.path.join(out, 'train_images', name)) as im:
        assert im.format == 'JPEG' and im.mode == 'RGB'
        w, h = im.size
    assert h == SMALL['page_height'] and 0.6 * h <= w <= 0.72 * h


def test_sample_submission_has_every_test_id_once(dataset):
    out, _ = dataset
    test_ids = [r[0] for r in read_rows(os.path.join(out, 'test_labels.csv'))[1:]]
    rows = read_rows(os.path.join(out, 'sample_submission.csv'))[1:]
    assert [r[0] for r in rows] == test_ids
    assert len(set(test_ids)) == len(test_ids)
    assert all(r[1] == 'U+003F 1 1 U+FF2F 2 2' for r in rows)


def test_labels_and_unicode_table(dataset):
    out, _ = dataset
    table = read_rows(os.path.join(out, 'unicode_translation.csv'))[1:]
    codes = [u for u, _ in table]
    assert codes == sorted(codes, key=lambda u: int(u[2:], 16))
    for u, c in table:
        assert re.fullmatch('U\\+[0-9A-F]{4,5}', u) and c == chr(int(u[2:], 16))
    used = set()
    for name in ('train.csv', 'test_labels.csv'):
        for image_id, labels in read_rows(os.path.join(out, name))[1:]:
            from PIL import Image
            folder = 'train_images' if name == 'train.csv' else 'test_images'
            with Image.open(os.path.join(out, folder, image_id + '.jpg')) as im:
                w, h = im.size
            for u, x, y, bw, bh in parse_labels(labels):
                used.add(u)
                assert bw >= 1 and bh >= 1 and x >= 0 and y >= 0
                assert x + bw <= w and y + bh <= h
    assert used <= set(codes)
    # Like the real table, some classes never occur.
    assert len(used) < len(codes)


def test_books_and_empty_pages(dataset):
    out, info = dataset
    train = read_rows(os.path.join(out, 'train.csv'))[1:]
    test = read_rows(os.path.join(out, 'test_labels.csv'))[1:]
    train_books = {book(r[0]) for r in train}
    test_books = {book(r[0]) for r in test}
    assert not train_books & test_books
    # Several pages per book, and enough books for a group 4-fold split.
    assert 4 <= len(train_books) < len(train)
    n_empty = sum(1 for r in train + test if r[1] == '')
    assert n_empty == round(10 * 0.25) + round(4 * 0.25)
    assert info['empty_pages'] == {'train': round(10 * 0.25), 'test': round(4 * 0.25)}


def test_info_json(dataset):
    out, info = dataset
    with open(os.path.join(out, 'synthetic_info.json'), encoding='utf-8') as f:
        saved = json.load(f)
    assert saved == info
    assert saved['seed'] == 0
    assert saved['pages'] == {'train': 10, 'test': 4}
    assert saved['fonts'] == ['ipaexg.ttf', 'KouzanBrushFontSousyo.ttf']
    assert saved['font_styles'] == {'ipaexg.ttf': 'print', 'KouzanBrushFontSousyo.ttf': 'cursive'}
    ids = [r[0] for r in read_rows(os.path.join(out, 'train.csv'))[1:] +
           read_rows(os.path.join(out, 'test_labels.csv'))[1:]]
    assert sorted(saved['page_fonts']) == sorted(ids)
    # Each page with text names the fonts it was drawn with; blank pages name none.
    for image_id, labels in (read_rows(os.path.join(out, 'train.csv'))[1:] +
                             read_rows(os.path.join(out, 'test_labels.csv'))[1:]):
        used = saved['page_fonts'][image_id]
        assert set(used) <= set(saved['fonts']) and bool(used) == bool(labels), image_id
    assert saved['page_height'] == 400
    assert saved['vocabulary']['classes_in_mapping'] == 200
    assert 'kr_version' in saved
    text = json.dumps(saved)
    assert os.sep + 'work' not in text and 'tmp' not in text


def test_long_tail(dataset):
    out, _ = dataset
    counts = {}
    for _, labels in read_rows(os.path.join(out, 'train.csv'))[1:]:
        for u, *_ in parse_labels(labels):
            counts[u] = counts.get(u, 0) + 1
    values = np.array(sorted(counts.values()), dtype=np.int64)
    assert values.max() >= 5 * np.median(values)


def test_reading_order_in_files(dataset):
    out, _ = dataset
    for _, labels in read_rows(os.path.join(out, 'train.csv'))[1:]:
        chars = parse_labels(labels)
        if not chars:
            continue
        # Reading order: the first character is in the rightmost column, at its top.
        xs = np.array([x + w / 2.0 for _, x, _, w, _ in chars])
        assert xs[0] > np.median(xs)


def test_deterministic_across_runs_and_workers(dataset, tmp_path, font_dir):
    out, _ = dataset
    again = str(tmp_path / 'again')
    make_synthetic_dataset(again, seed=0, workers=2, font_dirs=[font_dir], **SMALL)
    a, b = all_bytes(out), all_bytes(again)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    other = str(tmp_path / 'other')
    make_synthetic_dataset(other, seed=1, workers=1, font_dirs=[font_dir], **SMALL)
    c = all_bytes(other)
    assert c['train.csv'] != a['train.csv']


def test_existing_folder_needs_overwrite(tmp_path):
    out = tmp_path / 'ds'
    out.mkdir()
    (out / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError, match='--overwrite'):
        make_synthetic_dataset(str(out), train_pages=1, test_pages=1, page_height=200, workers=1)
    assert (out / 'keep.txt').exists()
    make_synthetic_dataset(str(out), train_pages=1, test_pages=1, page_height=200, workers=1,
                           overwrite=True)
    assert not (out / 'keep.txt').exists()
    assert (out / 'train.csv').exists()


@pytest.mark.parametrize('kwargs, name', [
    (dict(train_pages=0), 'train_pages'),
    (dict(train_pages=-2), 'train_pages'),
    (dict(test_pages=0), 'test_pages'),
    (dict(test_pages=1.5), 'test_pages'),
    (dict(workers=0), 'workers'),
    (dict(seed=-1), 'seed'),
    (dict(page_height=50), 'page_height'),
    (dict(empty_page_rate=1.5), 'empty_page_rate'),
])
def test_bad_arguments(tmp_path, kwargs, name):
    args = dict(train_pages=1, test_pages=1, page_height=200, workers=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        make_synthetic_dataset(str(tmp_path / 'ds'), **args)
    assert not (tmp_path / 'ds').exists()


def test_bad_font(tmp_path):
    with pytest.raises(FileNotFoundError, match='--font'):
        make_synthetic_dataset(str(tmp_path / 'ds'), train_pages=1, test_pages=1,
                               fonts=[str(tmp_path / 'missing.ttf')])


def test_unwritable_out(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(NotADirectoryError, match='out'):
        make_synthetic_dataset(str(blocker / 'ds'), train_pages=1, test_pages=1)
    with pytest.raises(ValueError, match='not a folder'):
        make_synthetic_dataset(str(blocker), train_pages=1, test_pages=1, overwrite=True)


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(task):
        calls.append(task)
        if len(calls) == 2:
            raise RuntimeError('boom')
        return original(task)

    original = generator._render_task
    monkeypatch.setattr(generator, '_render_task', failing)
    with pytest.raises(RuntimeError, match='boom'):
        make_synthetic_dataset(str(tmp_path / 'ds'), train_pages=2, test_pages=1,
                               page_height=200, workers=1)
    assert os.listdir(tmp_path) == []


def test_extra_font(tmp_path, font_dir):
    extra = tmp_path / 'copy.ttf'
    with open(fonts.bundled_font_path(), 'rb') as src:
        extra.write_bytes(src.read())
    info = make_synthetic_dataset(str(tmp_path / 'ds'), train_pages=2, test_pages=1,
                                  page_height=200, workers=1, fonts=[str(extra)],
                                  font_dirs=[font_dir])
    assert info['fonts'] == ['ipaexg.ttf', 'KouzanBrushFontSousyo.ttf', 'copy.ttf']
    info = make_synthetic_dataset(str(tmp_path / 'ds2'), train_pages=2, test_pages=1,
                                  page_height=200, workers=1, fonts=[str(extra)],
                                  font_dirs=[font_dir], brush_fonts=False)
    assert info['fonts'] == ['ipaexg.ttf', 'copy.ttf']


def test_without_brush_fonts_falls_back_with_a_notice(tmp_path, caplog):
    empty = tmp_path / 'fonts'
    empty.mkdir()
    with caplog.at_level('WARNING', logger='kr.synthetic.generator'):
        info = make_synthetic_dataset(str(tmp_path / 'ds'), train_pages=2, test_pages=1,
                                      page_height=200, workers=1, font_dirs=[str(empty)])
    assert info['fonts'] == ['ipaexg.ttf']
    assert set(sum(info['page_fonts'].values(), [])) <= {'ipaexg.ttf'}
    notice = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert len(notice) == 1
    assert 'no brush fonts found in {}'.format(empty) in notice[0]
    assert 'IPAexGothic' in notice[0] and 'fonts-kouzan-mouhitsu' in notice[0]


def test_a_font_lacking_kanji_is_used_for_kana_only(tmp_path):
    from tests.synthetic_tests.test_fonts import subset_font
    from kr.synthetic.vocabulary import is_kana
    from kr.synthetic.vocabulary import make_vocabulary
    kana = ''.join(c for c in make_vocabulary().chars if is_kana(c))
    folder = tmp_path / 'fonts'
    subset_font(folder / 'aoyagi-soseki.ttf', kana)
    info = make_synthetic_dataset(str(tmp_path / 'ds'), train_pages=12, test_pages=2,
                                  page_height=300, workers=1, font_dirs=[str(folder)])
    assert info['fonts'] == ['ipaexg.ttf', 'aoyagi-soseki.ttf']
    # Books in the kana-only font (most of them: cursive 0.55 against print 0.1) draw their
    # kanji with IPAexGothic; pages in IPAexGothic alone exist too.
    used = [tuple(f) for f in info['page_fonts'].values() if f]
    assert ('ipaexg.ttf', 'aoyagi-soseki.ttf') in used


def test_reading_order_json_leaves_unlabelled_ruby_out(dataset):
    out, info = dataset
    # The books of seed 0 gloss kanji with unlabelled ruby...
    assert info['ruby_groups']['test'] > 0
    with open(os.path.join(out, 'test_reading_order.json'), encoding='utf-8') as f:
        order = json.load(f)
    rows = dict(read_rows(os.path.join(out, 'test_labels.csv'))[1:])
    for page in order['pages']:
        chars = [chr(int(u[2:], 16)) for u, *_ in parse_labels(rows[page['image_id']])]
        # ...which is in neither the labels nor the reading order: one entry per label, and
        # the main text is the labelled characters outside annotation columns.
        assert len(page['column']) == len(page['ruby']) == len(chars)
        main = ''.join(c for c, r in zip(chars, page['ruby']) if not r)
        assert page['text'].replace('\n', '') == main
