import numpy as np
import pytest

from kr.synthetic import fonts
from kr.synthetic import page as page_lib
from kr.synthetic import render
from kr.synthetic import vocabulary

PAGE_HEIGHT = 400
SEEDS = list(range(6))


@pytest.fixture(scope='module')
def renderer():
    return render.GlyphRenderer([fonts.bundled_font_path()])


@pytest.fixture(scope='module')
def vocab():
    return vocabulary.make_vocabulary()


@pytest.fixture(scope='module')
def pages(renderer, vocab):
    return [page_lib.render_page(np.random.default_rng(s), PAGE_HEIGHT, vocab, renderer)
            for s in SEEDS]


def test_shapes_and_dtypes(pages):
    for p in pages:
        h, w = p.image.shape[:2]
        assert h == PAGE_HEIGHT
        assert 0.6 * h <= w <= 0.72 * h
        assert p.image.shape == (h, w, 3) and p.image.dtype == np.uint8
        assert p.ink.shape == (h, w) and p.ink.dtype == np.float32
        r = len(p.unicodes)
        assert r > 0
        assert p.bboxes.shape == (r, 4) and p.bboxes.dtype == np.int32
        assert p.columns.shape == (r,) and p.columns.dtype == np.int32
        assert len(p.glyph_masks) == r


def test_boxes_are_tight_on_each_glyphs_ink_and_inside_the_page(pages):
    for p in pages:
        h, w = p.ink.shape
        ink = p.ink >= render.INK_THRESHOLD
        for (x, y, bw, bh), mask in zip(p.bboxes, p.glyph_masks):
            assert bw >= 1 and bh >= 1
            assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
            assert mask.shape == (bh, bw) and mask.dtype == bool
            # Tight: every border row and column of the box touches this glyph's ink.
            assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
            # The glyph's ink is ink of the page's character layer.
            assert np.all(ink[y:y + bh, x:x + bw][mask])


def test_no_character_ink_outside_the_boxes(pages):
    for p in pages:
        covered = np.zeros(p.ink.shape, dtype=bool)
        for x, y, bw, bh in p.bboxes:
            covered[y:y + bh, x:x + bw] = True
        assert not np.any((p.ink >= render.INK_THRESHOLD) & ~covered)


def test_reading_order(pages):
    for p in pages:
        cols = p.columns
        # Columns are numbered in the order written, starting at 0.
        assert cols[0] == 0 and np.all(np.diff(cols) >= 0) and np.all(np.diff(cols) <= 1)
        centre_x = p.bboxes[:, 0] + p.bboxes[:, 2] / 2.0
        centre_y = p.bboxes[:, 1] + p.bboxes[:, 3] / 2.0
        mean_x = [centre_x[cols == c].mean() for c in range(cols.max() + 1)]
        # Columns right to left.
        assert np.all(np.diff(mean_x) < 0), mean_x
        # Top to bottom inside a column.
        for c in range(cols.max() + 1):
            assert np.all(np.diff(centre_y[cols == c]) > 0)
            assert np.all(np.diff(p.bboxes[cols == c, 1]) > 0)


def test_labels_string(pages):
    p = pages[0]
    tokens = p.labels.split(' ')
    assert len(tokens) == 5 * len(p.unicodes)
    assert tokens[0] == p.unicodes[0]
    assert [int(t) for t in tokens[1:5]] == p.bboxes[0].tolist()


def test_deterministic(renderer, vocab):
    a = page_lib.render_page(np.random.default_rng(3), PAGE_HEIGHT, vocab, renderer)
    # A fresh renderer (empty cache) must give the same page.
    fresh = render.GlyphRenderer([fonts.bundled_font_path()])
    b = page_lib.render_page(np.random.default_rng(3), PAGE_HEIGHT, vocab, fresh)
    c = page_lib.render_page(np.random.default_rng(4), PAGE_HEIGHT, vocab, renderer)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.bboxes, b.bboxes)
    assert a.unicodes == b.unicodes
    assert not np.array_equal(a.image[:100, :100], c.image[:100, :100]) or a.unicodes != c.unicodes


def test_empty_page(renderer, vocab):
    p = page_lib.render_page(np.random.default_rng(0), PAGE_HEIGHT, vocab, renderer, empty=True)
    assert p.unicodes == [] and p.bboxes.shape == (0, 4) and p.labels == ''
    assert not np.any(p.ink)


def test_book_style_is_shared(renderer, vocab):
    style = page_lib.sample_book_style(np.random.default_rng(0))
    for seed in range(2):
        p = page_lib.render_page(np.random.default_rng(seed), PAGE_HEIGHT, vocab, renderer,
                                 style=style)
        assert len(p.unicodes) > 0


def test_page_is_paper_coloured(pages):
    # Mostly light paper with dark ink: the median pixel is bright.
    for p in pages:
        assert np.median(p.image) > 100


def test_too_small_page(renderer, vocab):
    with pytest.raises(ValueError, match='page_height'):
        page_lib.render_page(np.random.default_rng(0), 32, vocab, renderer)
