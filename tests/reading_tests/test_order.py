import numpy as np
import pytest

from kr.reading.order import Block
from kr.reading.order import Column
from kr.reading.order import reading_order
from kr.reading.order import RubyGroup


def column(x, n, y0=0.0, size=10.0, step=12.0, dx=0.0):
    """``n`` boxes of ``size`` px centred on ``x`` (+ ``dx`` per character), ``step`` apart."""
    return [[x + k * dx - size / 2, y0 + k * step, x + k * dx + size / 2, y0 + k * step + size]
            for k in range(n)]


def shuffled(boxes, seed=0):
    """The boxes in a random order and ``perm`` such that ``shuffled[i] = boxes[perm[i]]``."""
    perm = np.random.RandomState(seed).permutation(len(boxes))
    return np.asarray(boxes, dtype=np.float32)[perm], perm


def read(boxes, **kwargs):
    """Reading order as indices of the unshuffled ``boxes``, and the layout."""
    given, perm = shuffled(boxes)
    layout = reading_order(given, **kwargs)
    return perm[layout.order].tolist(), layout, perm


def test_two_columns_right_to_left_top_to_bottom():
    boxes = column(100, 3) + column(80, 3)
    order, layout, perm = read(boxes)
    assert order == [0, 1, 2, 3, 4, 5]
    assert len(layout.blocks) == 1 and len(layout.blocks[0].columns) == 2
    first = layout.blocks[0].columns[0]
    assert perm[list(first.chars)].tolist() == [0, 1, 2] and first.ruby == ()
    assert not layout.ruby.any()
    # column_index is by index of the (shuffled) input; back in the original order:
    assert layout.column_index[np.argsort(perm)].tolist() == [0, 0, 0, 1, 1, 1]
    assert layout.block_index.tolist() == [0] * 6


def test_ruby_kept_apart_and_attached_to_its_column():
    main = column(100, 4)                                   # 0-3: y 0-10, 12-22, 24-34, 36-46
    ruby = column(110, 2, y0=15, size=6, step=10)           # 4-5: beside characters 1 and 2
    left = column(75, 4)                                    # 6-9
    boxes = main + ruby + left
    given = np.asarray(boxes, dtype=np.float32)
    layout = reading_order(given)
    assert layout.blocks == (Block(columns=(
        Column(chars=(0, 1, 2, 3), ruby=(RubyGroup(chars=(4, 5), base=(1, 3), side='right'),)),
        Column(chars=(6, 7, 8, 9))),),)
    # ruby on the right of its column is read before it
    assert layout.order.tolist() == [4, 5, 0, 1, 2, 3, 6, 7, 8, 9]
    assert layout.main_order.tolist() == [0, 1, 2, 3, 6, 7, 8, 9]
    assert layout.ruby.tolist() == [False] * 4 + [True] * 2 + [False] * 4
    assert layout.column_index.tolist() == [0] * 6 + [1] * 4
    # shuffled input: the same structure, in the input's indices
    order, shuffled_layout, perm = read(boxes)
    assert order == [4, 5, 0, 1, 2, 3, 6, 7, 8, 9]


def test_ruby_between_two_columns_glosses_the_right_one():
    # equally far from both main columns (the synthetic pages' annotation columns)
    boxes = column(100, 4) + column(85, 2, y0=15, size=6, step=10) + column(70, 4)
    layout = reading_order(np.asarray(boxes, dtype=np.float32))
    first, second = layout.blocks[0].columns
    assert first.ruby == (RubyGroup(chars=(4, 5), base=(1, 3), side='left'),)
    assert second.ruby == ()
    assert layout.order.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_spread_right_page_first():
    # Two pages 15 px (1.5 em) apart, each with a header above its two columns: without the
    # page size the headers are one row across the spread (a horizontal cut first).
    right = column(190, 1) + column(180, 3, y0=30) + column(165, 3, y0=30)    # 0, 1-3, 4-6
    left = column(128, 1) + column(135, 3, y0=30) + column(120, 3, y0=30)     # 7, 8-10, 11-13
    boxes = right + left
    order, layout, _ = read(boxes, image_size=(320, 200))
    assert order == list(range(14))
    assert len(layout.blocks) == 4   # header, body of the right page, header, body of the left
    order, _, _ = read(boxes)
    assert order == [0, 7, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]


def test_skewed_and_curved_columns():
    # 0.3 em drift per character to the left, then a bow
    boxes = column(100, 8, dx=-3.0) + column(85, 8, dx=-3.0)
    bow = [[x - 5 + 4 * np.sin(k / 2.0), y, x + 5 + 4 * np.sin(k / 2.0), y + 10]
           for k, (x, y, _, _) in enumerate(column(60, 8))]
    order, layout, _ = read(boxes + [list(b) for b in bow])
    assert order == list(range(24))
    assert [len(c.chars) for c in layout.blocks[0].columns] == [8, 8, 8]


def test_missing_character_keeps_one_column():
    boxes = column(100, 6)
    del boxes[2]                          # a 14 px hole, 1.4 em
    boxes += column(80, 6)
    order, layout, _ = read(boxes)
    assert order == list(range(11))
    assert [len(c.chars) for c in layout.blocks[0].columns] == [5, 6]


def test_hole_at_the_foot_of_the_longest_column_is_not_a_footer():
    boxes = column(100, 8)
    del boxes[5:7]                       # a 2.6 em hole; the other column ends higher
    boxes += column(80, 3)
    order, layout, _ = read(boxes)
    assert order == list(range(9))
    assert len(layout.blocks) == 1 and [len(c.chars) for c in layout.blocks[0].columns] == [6, 3]


def test_small_character_beside_the_foot_keeps_the_column_whole():
    # the last column of a real page (100241706_00004_2, ground truth): ...こそけれ with a
    # small cursive け beside the foot of そ; and a copy of it 400 px to the right
    last = [[220, 928, 359, 1157], [247, 1159, 363, 1371], [203, 1439, 387, 1595],
            [275, 1652, 359, 1721], [208, 1770, 405, 1974], [217, 2044, 400, 2179],
            [259, 2230, 327, 2355], [192, 2382, 408, 2555], [253, 2578, 372, 2793],
            [243, 2830, 402, 2973], [277, 2974, 389, 3111], [289, 3166, 358, 3263],
            [316, 3287, 373, 3420], [220, 3331, 273, 3422], [201, 3423, 382, 3560]]
    right = [[x1 + 400, y1, x2 + 400, y2] for x1, y1, x2, y2 in last]
    order, layout, _ = read(right + last)
    assert order == list(range(30))
    assert [len(c.chars) for c in layout.blocks[0].columns] == [15, 15]


def test_header_body_and_page_number_blocks():
    header = column(40, 2, y0=0)                       # 0-1, top left, 2 em above the text
    body = column(100, 4, y0=40) + column(80, 4, y0=40)    # 2-9
    number = [[95, 120, 101, 126]]                     # 10, under the text
    order, layout, _ = read(header + body + number)
    assert order == list(range(11))
    assert [len(b.columns) for b in layout.blocks] == [1, 2, 1]


def test_one_character_and_empty_page():
    layout = reading_order([[5, 5, 15, 20]], scores=[0.9])
    assert layout.blocks == (Block(columns=(Column(chars=(0,)),)),)
    assert layout.order.tolist() == [0] and layout.ruby.tolist() == [False]
    empty = reading_order(np.zeros((0, 4), dtype=np.float32))
    assert empty.blocks == () and empty.n == 0
    assert empty.order.shape == (0,) and empty.order.dtype == np.int64
    assert empty.ruby.shape == (0,) and empty.main_order.shape == (0,)


def test_duplicate_detection_stays_in_its_column():
    boxes = column(100, 3) + [[96, 13, 106, 23]] + column(80, 3)   # 3 overlaps 1
    order, layout, _ = read(boxes)
    assert [len(c.chars) for c in layout.blocks[0].columns] == [4, 3]
    assert order[4:] == [4, 5, 6] and sorted(order[:4]) == [0, 1, 2, 3]


def test_input_order_does_not_matter():
    boxes = column(100, 5) + column(110, 2, y0=13, size=5, step=6) + column(80, 5)
    expected = None
    for seed in range(5):
        given, perm = shuffled(boxes, seed)
        got = perm[reading_order(given).order].tolist()
        expected = expected or got
        assert got == expected


@pytest.mark.parametrize('bboxes,scores,message', [
    (np.zeros((3, 5)), None, r'bboxes must be \(R, 4\)'),
    ([[0, 0, np.nan, 1]], None, 'non-finite'),
    ([[0, 0, 1, 1]], [0.5, 0.5], 'scores has 2 values for 1 boxes'),
])
def test_bad_input(bboxes, scores, message):
    with pytest.raises(ValueError, match=message):
        reading_order(bboxes, scores=scores)
