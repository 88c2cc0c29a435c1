import dataclasses

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


def test_renderer_falls_back_for_a_missing_glyph(tmp_path):
    from tests.synthetic_tests.test_fonts import subset_font
    kana_only = subset_font(tmp_path / 'KouzanBrushFontSousyo.ttf', 'のにし')
    paths = [fonts.bundled_font_path(), kana_only]
    chars = 'の人'
    rows = fonts.font_coverage(paths, chars)
    r = render.GlyphRenderer(paths, coverage={c: tuple(row[i] for row in rows)
                                              for i, c in enumerate(chars)})
    assert r.styles == ['print', 'cursive']
    assert r.font_for(1, 'の') == 1 and r.font_for(1, '人') == 0 and r.font_for(0, '人') == 0
    none = render.GlyphRenderer(paths, coverage={'人': (False, False)})
    assert none.font_for(0, '人') is None
    with pytest.raises(ValueError, match='coverage'):
        render.GlyphRenderer(paths, coverage={'人': (True,)})


def test_a_font_never_draws_a_glyph_it_lacks(tmp_path, vocab, monkeypatch):
    from tests.synthetic_tests.test_fonts import subset_font
    kana = ''.join(c for c in vocab.chars if vocabulary.is_kana(c))
    kana_only = subset_font(tmp_path / 'KouzanBrushFontSousyo.ttf', kana)
    paths = [fonts.bundled_font_path(), kana_only]
    rows = fonts.font_coverage(paths, vocab.chars)
    coverage = {c: tuple(row[i] for row in rows) for i, c in enumerate(vocab.chars)}
    assert sum(not ok for _, ok in coverage.values()) > 50   # the kanji
    r = render.GlyphRenderer(paths, coverage=coverage)
    drawn = []
    original = r.render

    def spy(rng, font_index, char, *args, **kwargs):
        drawn.append((font_index, char))
        return original(rng, font_index, char, *args, **kwargs)

    monkeypatch.setattr(r, 'render', spy)
    style = dataclasses.replace(page_lib.sample_book_style(np.random.default_rng(0), 2),
                                font_index=1, ruby_rate=0.8)
    p = page_lib.render_page(np.random.default_rng(1), PAGE_HEIGHT, vocab, r, style=style)
    assert any(f == 1 for f, _ in drawn) and any(f == 0 for f, _ in drawn)
    assert all(coverage.get(c, (True, True))[f] for f, c in drawn if c in coverage)
    # Kana from the brush font, kanji from the bundled font in its place.
    assert p.fonts == (0, 1)


def ruby_page(renderer, vocab, seed=2):
    style = dataclasses.replace(page_lib.sample_book_style(np.random.default_rng(seed)),
                                ruby_rate=0.9, annotation_rate=0.0, ruby_scale=0.4)
    return page_lib.render_page(np.random.default_rng(seed), PAGE_HEIGHT * 2, vocab, renderer,
                                style=style)


def test_ruby_is_drawn_but_not_labelled(renderer, vocab):
    p = ruby_page(renderer, vocab)
    assert len(p.ruby_bboxes) >= 3 and p.ruby_bboxes.dtype == np.int32
    assert not p.ruby.any()   # no labelled annotation columns in this book
    labelled = np.zeros(p.ink.shape, dtype=bool)
    for x, y, w, h in p.bboxes:
        labelled[y:y + h, x:x + w] = True
    kanji = [not vocabulary.is_kana(chr(int(u[2:], 16))) for u in p.unicodes]
    assert len(p.ruby_bboxes) <= sum(kanji)
    gray = p.image.astype(np.float32).mean(axis=2)
    paper = np.median(gray)
    inked_sum = blank_sum = inked_n = blank_n = 0
    for x, y, w, h in p.ruby_bboxes:
        # Drawn: ink in the ruby layer and darker pixels in the image (a kana of 10 px is
        # faint: its thin strokes are antialiased and blurred; 48 grey levels here)...
        ruby = p.ruby_ink[y:y + h, x:x + w]
        assert (ruby >= render.INK_THRESHOLD).any()
        assert gray[y:y + h, x:x + w].min() < paper - 30
        inked_sum += gray[y:y + h, x:x + w][ruby >= render.INK_THRESHOLD].sum()
        inked_n += int((ruby >= render.INK_THRESHOLD).sum())
        blank_sum += gray[y:y + h, x:x + w][ruby == 0].sum()
        blank_n += int((ruby == 0).sum())
        # ...beside the labelled characters, never inside a labelled box, nor in the
        # labelled character layer.
        assert not labelled[y:y + h, x:x + w].any()
        assert not (p.ink[y:y + h, x:x + w] >= render.INK_THRESHOLD).any()
    # On the whole, the ruby's inked pixels are far darker than the paper around them.
    assert blank_sum / blank_n - inked_sum / inked_n > 40     # 66 here
    # Right of a labelled kanji: each group's left edge is close to a kanji box's right edge.
    rights = [(x + w, y, y + h) for (x, y, w, h), k in zip(p.bboxes.tolist(), kanji) if k]
    for x, y, w, h in p.ruby_bboxes.tolist():
        assert any(0 <= x - r <= 0.2 * 2 * PAGE_HEIGHT * 0.05 and y < b and a < y + h
                   for r, a, b in rights)


def test_no_ruby_in_books_without_it(renderer, vocab):
    style = dataclasses.replace(page_lib.sample_book_style(np.random.default_rng(2)),
                                ruby_rate=0.0)
    p = page_lib.render_page(np.random.default_rng(2), PAGE_HEIGHT, vocab, renderer, style=style)
    assert p.ruby_bboxes.shape == (0, 4) and not p.ruby_ink.any()


def median_ratio(renderer, vocab, monkeypatch, rate_name, rate, counts):
    """Median height / width of the boxes whose character ``counts(char)`` on four pages,
    with the page module's ``rate_name`` set to ``rate``."""
    monkeypatch.setattr(page_lib, rate_name, rate)
    ratios = []
    for seed in range(4):
        p = page_lib.render_page(np.random.default_rng(seed), PAGE_HEIGHT * 2, vocab, renderer)
        for u, (x, y, w, h) in zip(p.unicodes, p.bboxes.tolist()):
            if counts(chr(int(u[2:], 16))):
                ratios.append(h / w)
    return np.median(ratios)


def test_elongated_kana(renderer, vocab, monkeypatch):
    def tall_ratio(rate):
        return median_ratio(renderer, vocab, monkeypatch, 'ELONGATE_RATE', rate,
                            lambda c: c in page_lib.ELONGATED_KANA)
    # Stretched by 1.4-2.2 times: the median height/width ratio grows by more than 1.3.
    assert tall_ratio(1.0) > 1.3 * tall_ratio(0.0)


def test_tall_kanji(renderer, vocab, monkeypatch):
    def kanji_ratio(rate):
        return median_ratio(renderer, vocab, monkeypatch, 'TALL_KANJI_RATE', rate,
                            lambda c: not page_lib.is_kana(c))
    # Stretched by 1.2-1.6 times with the width kept: the median ratio grows by over 1.2.
    assert kanji_ratio(1.0) > 1.2 * kanji_ratio(0.0)


def test_head_space(renderer, vocab):
    style = dataclasses.replace(page_lib.sample_book_style(np.random.default_rng(0)),
                                head_space=0.18)
    p = page_lib.render_page(np.random.default_rng(0), PAGE_HEIGHT, vocab, renderer, style=style)
    # Sheet margin <= 6 %, text margin >= 7 % of the sheet (>= 88 % of the page), plus 18 %.
    assert len(p.unicodes) > 0
    assert p.bboxes[:, 1].min() >= (0.07 + 0.18) * 0.88 * PAGE_HEIGHT
