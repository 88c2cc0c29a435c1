import numpy as np
import pytest

from kr.synthetic import vocabulary


def test_ranked_characters_are_unique_hiragana_and_kanji():
    chars = vocabulary.RANKED_CHARACTERS
    assert len(set(chars)) == len(chars)
    for c in chars:
        code = ord(c)
        assert 0x3040 <= code <= 0x309F or 0x4E00 <= code <= 0x9FFF, c
    # The head is the real data's most common hiragana.
    assert chars[:12] == 'のにしてはをとかなるりも'


def test_make_vocabulary_default():
    v = vocabulary.make_vocabulary()
    assert len(v) == vocabulary.DEFAULT_N_CLASSES
    assert 150 <= len(v) <= 250
    assert v.weights.dtype == np.float64
    assert v.weights.shape == (len(v),)
    assert v.weights.sum() == pytest.approx(1.0)
    n_unused = int(np.sum(v.weights == 0))
    assert n_unused == round(len(v) * vocabulary.UNUSED_CLASS_FRACTION)
    assert len(v.used_chars) == len(v) - n_unused
    # Long tail: weights fall with rank; the top class dwarfs the median used class.
    used = v.weights[v.weights > 0]
    assert np.all(np.diff(used) < 0)
    assert used[0] > 10 * np.median(used)


def test_kana_weights_only_hiragana():
    v = vocabulary.make_vocabulary(50)
    w = v.kana_weights
    assert w.sum() == pytest.approx(1.0)
    for c, wi in zip(v.chars, w):
        if wi > 0:
            assert vocabulary.is_kana(c)


def test_table_sorted_by_code_point():
    v = vocabulary.make_vocabulary(30)
    table = v.table()
    assert len(table) == 30
    codes = [int(u[2:], 16) for u, _ in table]
    assert codes == sorted(codes)
    for u, c in table:
        assert u == 'U+{:04X}'.format(ord(c))


def test_unicode_of():
    assert vocabulary.unicode_of('の') == 'U+306E'
    assert vocabulary.unicode_of('一') == 'U+4E00'


@pytest.mark.parametrize('n', [0, 1, len(vocabulary.RANKED_CHARACTERS) + 1])
def test_bad_n_classes(n):
    with pytest.raises(ValueError, match='n_classes'):
        vocabulary.make_vocabulary(n)


def test_bad_unused_fraction():
    with pytest.raises(ValueError, match='unused_fraction'):
        vocabulary.make_vocabulary(unused_fraction=1.0)
