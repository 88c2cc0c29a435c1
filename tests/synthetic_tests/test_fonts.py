import os

import numpy as np
import pytest

from kr.synthetic import fonts
from kr.synthetic import vocabulary


def test_bundled_font_is_ipaexg_and_covers_the_vocabulary():
    path = fonts.bundled_font_path()
    assert os.path.basename(path) == 'ipaexg.ttf'
    assert os.path.isfile(path)
    assert fonts.missing_glyphs(path, vocabulary.RANKED_CHARACTERS) == []


def test_missing_glyphs_finds_unmapped_characters():
    path = fonts.bundled_font_path()
    # A hentaigana (Kana Supplement) that IPAexGothic does not have.
    assert fonts.missing_glyphs(path, ['の', '\U0001B001']) == ['\U0001B001']


def test_check_font_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='--font .*no such font'):
        fonts.check_font(str(tmp_path / 'nope.ttf'), 'の', argument='--font')
    not_a_font = tmp_path / 'text.ttf'
    not_a_font.write_text('hello')
    with pytest.raises(ValueError, match='--font'):
        fonts.check_font(str(not_a_font), 'の', argument='--font')


def test_find_system_fonts_in_empty_folder(tmp_path):
    assert fonts.find_system_fonts('の', roots=[str(tmp_path)]) == []


def test_find_system_fonts_finds_a_covering_font(tmp_path):
    target = tmp_path / 'fonts' / 'copy.ttf'
    target.parent.mkdir()
    with open(fonts.bundled_font_path(), 'rb') as src:
        target.write_bytes(src.read())
    (tmp_path / 'fonts' / 'broken.ttf').write_text('not a font')
    found = fonts.find_system_fonts('のに', roots=[str(tmp_path)])
    assert found == [str(target)]


def test_bundled_font_missing_package(monkeypatch):
    monkeypatch.setattr(fonts.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(FileNotFoundError, match='japanize-matplotlib'):
        fonts.bundled_font_path()


def copy_font(target):
    """A copy of the bundled font at ``target`` (a pathlib path); returns it as str."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(fonts.bundled_font_path(), 'rb') as src:
        target.write_bytes(src.read())
    return str(target)


def subset_font(target, chars):
    """The bundled font cut down to ``chars`` (fontTools' subsetter), written to ``target``."""
    from fontTools import subset
    options = subset.Options()
    options.notdef_outline = True
    font = subset.load_font(fonts.bundled_font_path(), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(target), options)
    return str(target)


def test_find_brush_fonts_in_a_folder(tmp_path):
    # Names of BRUSH_FONTS anywhere under the roots, in the table's order; other fonts and a
    # second copy of a name (later in path order) are left out.
    soseki = copy_font(tmp_path / 'a' / 'aoyagi-soseki.ttf')
    sousyo = copy_font(tmp_path / 'b' / 'deeper' / 'KouzanBrushFontSousyo.ttf')
    copy_font(tmp_path / 'c' / 'aoyagi-soseki.ttf')
    copy_font(tmp_path / 'a' / 'other.ttf')
    assert fonts.find_brush_fonts([str(tmp_path)]) == [sousyo, soseki]
    assert fonts.font_style(sousyo) == 'cursive'
    assert fonts.font_style(str(tmp_path / 'a' / 'other.ttf')) == 'print'


def test_find_brush_fonts_without_the_packages(tmp_path):
    copy_font(tmp_path / 'ipaexg.ttf')
    assert fonts.find_brush_fonts([str(tmp_path)]) == []
    assert fonts.find_brush_fonts([str(tmp_path / 'no-such-folder')]) == []


def test_coverage_of_a_font_lacking_glyphs(tmp_path):
    kana_only = subset_font(tmp_path / 'kana.ttf', 'のにし')
    assert fonts.missing_glyphs(kana_only, 'の人にし御') == ['人', '御']
    assert fonts.font_coverage([fonts.bundled_font_path(), kana_only], 'の人') == [
        (True, True), (True, False)]
    # A font that draws some of the vocabulary is accepted; one that draws none is not.
    assert fonts.check_font(kana_only, 'の人', argument='--font') == kana_only
    with pytest.raises(ValueError, match='--font .*draws none of the 2'):
        fonts.check_font(kana_only, '人御', argument='--font')


def test_style_weights():
    assert fonts.style_weights(['print']) == [1.0]
    assert fonts.style_weights(['print', 'cursive', 'cursive', 'brush']) == pytest.approx(
        [0.1, 0.275, 0.275, 0.35])
    # Without cursive fonts, print and brush share everything in proportion 0.1 : 0.35.
    assert fonts.style_weights(['print', 'brush']) == pytest.approx([0.1 / 0.45, 0.35 / 0.45])


@pytest.mark.parametrize('n_books', [0, 1, 9, 23, 60])
def test_book_fonts_follow_the_weights(n_books):
    weights = fonts.style_weights(['print', 'cursive', 'cursive', 'cursive', 'brush', 'brush'])
    for seed in range(20):
        chosen = fonts.book_fonts(np.random.default_rng(seed), n_books, weights)
        assert len(chosen) == n_books
        counts = np.bincount(chosen, minlength=len(weights))
        # every font gets the floor or the ceiling of its share of the books
        share = np.asarray(weights) * n_books
        assert ((counts >= np.floor(share - 1e-9)) & (counts <= np.ceil(share + 1e-9))).all(), (
            seed, counts, share)
    # the order is random, and a seed gives the same fonts
    a = fonts.book_fonts(np.random.default_rng(0), 23, weights)
    assert a == fonts.book_fonts(np.random.default_rng(0), 23, weights)
    assert a != sorted(a)


def test_book_fonts_of_one_font():
    assert fonts.book_fonts(np.random.default_rng(3), 5, [1.0]) == [0] * 5
