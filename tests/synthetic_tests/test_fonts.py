import os

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
