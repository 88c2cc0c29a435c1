import pytest

from kr.reading.metrics import character_counts
from kr.reading.metrics import character_error_rate
from kr.reading.metrics import edit_distance
from kr.reading.metrics import successor_links
from kr.reading.metrics import text_characters


def test_successor_links():
    assert successor_links([0, 1, 2, 3], [0, 1, 2, 3]) == (3, 3)
    # two columns swapped: only the link between them is lost
    assert successor_links([2, 3, 0, 1], [0, 1, 2, 3]) == (2, 3)
    assert successor_links([3, 2, 1, 0], [0, 1, 2, 3]) == (0, 3)
    assert successor_links([5], [5]) == (0, 0) and successor_links([], []) == (0, 0)
    with pytest.raises(ValueError, match='not a permutation'):
        successor_links([0, 1], [0, 2])


def test_edit_distance_and_cer():
    assert edit_distance('kitten', 'sitting') == 3
    assert edit_distance('', 'abc') == 3 and edit_distance('abc', '') == 3
    assert edit_distance('あいう', 'あいう') == 0
    assert text_characters('あい\nう え\n') == 'あいうえ'
    # line breaks are not characters; one substitution and one deletion
    assert character_error_rate('あか\nう', 'あい\nうえ') == (2, 4)


def test_character_counts_ignore_order():
    assert character_counts('うい\nあ', 'あいう') == (3, 3, 3)
    assert character_counts('ああい', 'あいいう') == (2, 3, 4)
    assert character_counts('', '') == (0, 0, 0)
