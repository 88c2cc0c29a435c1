import numpy as np
import pytest

from kr.datasets import format_labels
from kr.datasets import parse_labels
from kr.datasets import read_labels_csv
from kr.datasets import write_labels_csv


def test_parse_labels_boxes_are_xyxy_float32():
    unicodes, bboxes = parse_labels('U+3042 10 20 5 8 U+5DE5 1168 1396 187 95')
    assert unicodes == ['U+3042', 'U+5DE5']
    assert bboxes.dtype == np.float32
    np.testing.assert_array_equal(bboxes, [[10, 20, 15, 28], [1168, 1396, 1355, 1491]])


@pytest.mark.parametrize('labels', ['', '   ', None])
def test_parse_labels_empty(labels):
    unicodes, bboxes = parse_labels(labels)
    assert unicodes == [] and bboxes.shape == (0, 4) and bboxes.dtype == np.float32


def test_format_round_trip():
    text = 'U+3042 10 20 5 8 U+3044 0 0 4 4'
    assert format_labels(*parse_labels(text)) == text
    assert format_labels([], np.zeros((0, 4))) == ''


@pytest.mark.parametrize('labels,token', [
    ('U+3042 10 20 5', 'U+3042 10 20 5'),
    ('u+3042 10 20 5 8', "'u+3042'"),
    ('U+3042 10 x 5 8', "'x'"),
    ('U+3042 10 20 -5 8', "'-5'"),
    ('U+3042 10 20 nan 8', "'nan'"),
])
def test_parse_labels_errors_name_the_row_and_token(labels, token):
    with pytest.raises(ValueError) as e:
        parse_labels(labels, image_id='page_1', source='train.csv', line=7)
    assert 'train.csv:7' in str(e.value) and 'page_1' in str(e.value) and token in str(e.value)


def test_read_labels_csv_keeps_strings(tmp_path):
    path = tmp_path / 'x.csv'
    path.write_text('image_id,labels\n0001,\nNA,U+3042 1 2 3 4\n')
    assert read_labels_csv(str(path)) == [('0001', '', 2), ('NA', 'U+3042 1 2 3 4', 3)]


def test_read_labels_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.csv'):
        read_labels_csv(str(tmp_path / 'nope.csv'))
    bad = tmp_path / 'bad.csv'
    bad.write_text('id,labels\na,\n')
    with pytest.raises(ValueError, match=r'bad.csv: missing column\(s\) image_id \(found id, labels\)'):
        read_labels_csv(str(bad))
    dup = tmp_path / 'dup.csv'
    dup.write_text('image_id,labels\na,\nb,\na,\n')
    with pytest.raises(ValueError, match='dup.csv:4: image_id a already appears on line 2'):
        read_labels_csv(str(dup))
    short = tmp_path / 'short.csv'
    short.write_text('image_id,labels\na,x,y\n')
    with pytest.raises(ValueError, match='short.csv:2: expected 2 fields, got 3'):
        read_labels_csv(str(short))


def test_write_labels_csv_round_trip(tmp_path):
    rows = [('a_1', 'U+3042 1 2 3 4'), ('b_1', '')]
    path = str(tmp_path / 'out.csv')
    write_labels_csv(path, rows)
    assert [(r[0], r[1]) for r in read_labels_csv(path)] == rows
    assert open(path).read() == 'image_id,labels\na_1,U+3042 1 2 3 4\nb_1,\n'
