"""Tests of kr.evaluation.f1 against an independent, loop-based reference scorer."""

import math
import os

import numpy as np
import pandas as pd
import pytest

from kr.evaluation import F1Result
from kr.evaluation import f1_from_counts
from kr.evaluation import kuzushiji_f1
from kr.evaluation import parse_solution_labels
from kr.evaluation import parse_submission_labels
from kr.evaluation import read_label_table
from kr.evaluation import score_page


# ---------------------------------------------------------------------------------------------
# Reference: the public scorer's behaviour, written as plainly as possible.
# ---------------------------------------------------------------------------------------------

def _ref_tokens(labels):
    if labels is None or (isinstance(labels, float) and math.isnan(labels)):
        return []
    return labels.split()


def ref_score_page(sub_labels, sol_labels):
    """Return (tp, fp, fn, match) for one page with plain Python loops."""
    pt = _ref_tokens(sub_labels)
    st = _ref_tokens(sol_labels)
    preds = []
    for i in range(0, len(pt), 3):
        preds.append((pt[i], float(pt[i + 1]), float(pt[i + 2])))
    truths = []
    for i in range(0, len(st), 5):
        truths.append((st[i], float(st[i + 1]), float(st[i + 2]),
                       float(st[i + 3]), float(st[i + 4])))
    used = [False] * len(preds)
    tp = fn = 0
    match = []
    for label, x, y, w, h in truths:
        x2 = x + w
        y2 = y + h
        found = -1
        for j, (plabel, px, py) in enumerate(preds):
            if not used[j] and plabel == label and x < px and px < x2 and y < py and py < y2:
                found = j
                break
        if found >= 0:
            used[found] = True
            tp += 1
        else:
            fn += 1
        match.append(found)
    fp = used.count(False)
    return tp, fp, fn, match


def ref_f1(tp, fp, fn):
    """Return (f1, precision, recall) with the public scorer's formula."""
    if tp + fp == 0 or tp + fn == 0:
        return 0.0, 0.0, 0.0
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    if precision > 0 and recall > 0:
        f1 = (2 * precision * recall) / (precision + recall)
    else:
        f1 = 0.0
    return f1, precision, recall


def ref_kuzushiji_f1(sub_df, sol_df):
    """Return (f1, precision, recall, tp, fp, fn, per_page) aligning pages by id."""
    sub = dict(zip(sub_df['image_id'], sub_df['labels']))
    per_page = {}
    tp = fp = fn = 0
    for image_id, sol_labels in zip(sol_df['image_id'], sol_df['labels']):
        t, f, n, _ = ref_score_page(sub[image_id], sol_labels)
        per_page[image_id] = (t, f, n)
        tp += t
        fp += f
        fn += n
    f1, precision, recall = ref_f1(tp, fp, fn)
    return f1, precision, recall, tp, fp, fn, per_page


def table(rows):
    """DataFrame image_id,labels from (id, labels) pairs."""
    return pd.DataFrame({'image_id': [r[0] for r in rows], 'labels': [r[1] for r in rows]})


def lib_page(sub_labels, sol_labels):
    pu, pp = parse_submission_labels(sub_labels)
    gu, gb = parse_solution_labels(sol_labels)
    return score_page(pu, pp, gu, gb)


def check_same(sub_df, sol_df):
    """Library and reference agree exactly; returns the library result."""
    result = kuzushiji_f1(sub_df, sol_df)
    f1, precision, recall, tp, fp, fn, per_page = ref_kuzushiji_f1(sub_df, sol_df)
    assert (result.tp, result.fp, result.fn) == (tp, fp, fn)
    # Bit-identical floats, not approximately equal.
    assert result.f1 == f1
    assert result.precision == precision
    assert result.recall == recall
    assert type(result.f1) is float and type(result.tp) is int
    assert list(result.pages['image_id']) == list(sol_df['image_id'])
    for image_id, t, f, n in result.pages.itertuples(index=False):
        assert (t, f, n) == per_page[image_id], image_id
    for sub_labels, (image_id, sol_labels) in zip(
            [dict(zip(sub_df['image_id'], sub_df['labels']))[i] for i in sol_df['image_id']],
            zip(sol_df['image_id'], sol_df['labels'])):
        page = lib_page(sub_labels, sol_labels)
        t, f, n, match = ref_score_page(sub_labels, sol_labels)
        assert (page.tp, page.fp, page.fn) == (t, f, n), image_id
        assert page.match.tolist() == match, image_id
    return result


def check_page(sub_labels, sol_labels, expected):
    """One page: library == reference == expected (tp, fp, fn, match)."""
    page = lib_page(sub_labels, sol_labels)
    got = (page.tp, page.fp, page.fn, page.match.tolist())
    assert got == ref_score_page(sub_labels, sol_labels)
    assert got == expected
    check_same(table([('p', sub_labels)]), table([('p', sol_labels)]))


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

def test_parse_submission():
    unicodes, points = parse_submission_labels('U+3042 1 2 U+3044 12.5 1e3')
    assert unicodes == ['U+3042', 'U+3044']
    assert points.dtype == np.float64 and points.shape == (2, 2)
    assert points.tolist() == [[1.0, 2.0], [12.5, 1000.0]]


def test_parse_solution_x2_is_x_plus_w_in_float64():
    unicodes, boxes = parse_solution_labels('U+3042 0.1 0.2 0.2 0.1 U+3044 10 20 30 40')
    assert unicodes == ['U+3042', 'U+3044']
    assert boxes.dtype == np.float64 and boxes.shape == (2, 4)
    assert boxes[0].tolist() == [0.1, 0.2, 0.1 + 0.2, 0.2 + 0.1]
    assert boxes[0, 2] == 0.30000000000000004
    assert boxes[1].tolist() == [10.0, 20.0, 40.0, 60.0]


@pytest.mark.parametrize('labels', ['', '   ', '\t\n', None, float('nan'), np.nan, pd.NA])
def test_parse_empty(labels):
    unicodes, points = parse_submission_labels(labels)
    assert unicodes == [] and points.shape == (0, 2) and points.dtype == np.float64
    unicodes, boxes = parse_solution_labels(labels)
    assert unicodes == [] and boxes.shape == (0, 4) and boxes.dtype == np.float64


@pytest.mark.parametrize('labels', [
    'U+3042 1 2 U+3044 3 4',
    '  U+3042 1 2 U+3044 3 4  ',
    'U+3042\t1  2\nU+3044   3\t\t4',
    'U+3042 1.0 2.00 U+3044 3e0 0.4e1',
])
def test_parse_whitespace_and_number_formats(labels):
    unicodes, points = parse_submission_labels(labels)
    assert unicodes == ['U+3042', 'U+3044']
    assert points.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize('labels,tokens', [
    ('U+3042 1 2 U+3044 3', ["'U+3044 3'"]),          # incomplete tail
    ('U+3042 1 U+3044 3 4', ["'U+3044'"]),            # a token missing: label shifted
    ('U+3042 1 2 U+3044 x 4', ["'x'", "'U+3044'"]),   # a coordinate that is not a number
    ('U+3042 1,5 2', ["'1,5'"]),
])
def test_parse_submission_malformed_names_id_file_token(labels, tokens):
    with pytest.raises(ValueError) as e:
        parse_submission_labels(labels, image_id='page_7', source='sub.csv')
    message = str(e.value)
    assert "'page_7'" in message and 'sub.csv' in message
    for token in tokens:
        assert token in message


@pytest.mark.parametrize('labels,tokens', [
    ('U+3042 1 2 3 4 U+3044 1 2 3', ["'U+3044 1 2 3'"]),
    ('U+3042 1 2 3 four', ["'four'"]),
    ('U+3042 1 2 3 4 5', ["'5'"]),
])
def test_parse_solution_malformed_names_id_file_token(labels, tokens):
    with pytest.raises(ValueError) as e:
        parse_solution_labels(labels, image_id='book-001', source='train.csv')
    message = str(e.value)
    assert "'book-001'" in message and 'train.csv' in message
    for token in tokens:
        assert token in message


def test_parse_rejects_non_string():
    with pytest.raises(ValueError, match="'p1'"):
        parse_submission_labels(12, image_id='p1')


# ---------------------------------------------------------------------------------------------
# Hand-made pages (box U+1 10 20 30 40 spans x 10..40, y 20..60)
# ---------------------------------------------------------------------------------------------

BOX = 'U+1 10 20 30 40'


@pytest.mark.parametrize('point', ['10 40', '40 40', '25 20', '25 60',     # the four edges
                                   '10 20', '40 60'])                      # corners
def test_point_on_edge_is_not_inside(point):
    check_page('U+1 ' + point, BOX, (0, 1, 1, [-1]))


@pytest.mark.parametrize('point', [
    repr(float(np.nextafter(10.0, 11.0))) + ' 40', repr(float(np.nextafter(40.0, 39.0))) + ' 40',
    '25 ' + repr(float(np.nextafter(20.0, 21.0))), '25 ' + repr(float(np.nextafter(60.0, 59.0))),
    '25 40', '10.5 59.5'])
def test_point_just_inside(point):
    check_page('U+1 ' + point, BOX, (1, 0, 0, [0]))


@pytest.mark.parametrize('point', [repr(float(np.nextafter(10.0, 9.0))) + ' 40',
                                   repr(float(np.nextafter(40.0, 41.0))) + ' 40'])
def test_point_just_outside(point):
    check_page('U+1 ' + point, BOX, (0, 1, 1, [-1]))


def test_box_edge_computed_in_float64():
    # 0.1 + 0.2 == 0.30000000000000004, so x = 0.3 is inside but x = 0.30000000000000004 is on
    # the edge.
    check_page('U+1 0.3 0.5', 'U+1 0.1 0 0.2 1', (1, 0, 0, [0]))
    check_page('U+1 0.30000000000000004 0.5', 'U+1 0.1 0 0.2 1', (0, 1, 1, [-1]))


def test_duplicate_prediction_is_fp():
    check_page('U+1 25 40 U+1 25 40', BOX, (1, 1, 0, [0]))
    check_page('U+1 25 40 U+1 26 41 U+1 27 42', BOX, (1, 2, 0, [0]))


def test_lowest_index_prediction_wins():
    # Prediction 0 is outside, 1 and 2 are inside: 1 is taken.
    check_page('U+1 0 0 U+1 30 50 U+1 25 40', BOX, (1, 2, 0, [1]))


def test_order_of_boxes_decides_overlap():
    a = 'U+1 0 0 10 10'
    b = 'U+1 5 5 10 10'
    # One prediction in the overlap: the first box written takes it, the second is an FN.
    check_page('U+1 7 7', a + ' ' + b, (1, 0, 1, [0, -1]))
    check_page('U+1 7 7', b + ' ' + a, (1, 0, 1, [0, -1]))
    # Prediction 0 in the overlap, prediction 1 only in box a. Greedy, not optimal matching:
    # a first takes 0 and b gets nothing; b first takes 0 and a takes 1.
    check_page('U+1 7 7 U+1 2 2', a + ' ' + b, (1, 1, 1, [0, -1]))
    check_page('U+1 7 7 U+1 2 2', b + ' ' + a, (2, 0, 0, [0, 1]))


def test_label_mismatch():
    check_page('U+2 25 40', BOX, (0, 1, 1, [-1]))
    # Label strings are compared exactly, not as code points.
    check_page('U+0001 25 40', BOX, (0, 1, 1, [-1]))
    check_page('u+1 25 40', BOX, (0, 1, 1, [-1]))
    check_page('U+2 25 40 U+1 25 40', BOX, (1, 1, 0, [1]))


def test_many_labels_one_page():
    sol = 'U+1 0 0 10 10 U+2 0 0 10 10 U+3 20 0 10 10 U+1 20 0 10 10'
    sub = 'U+3 25 5 U+1 5 5 U+2 5 5 U+2 25 5 U+1 25 5'
    check_page(sub, sol, (4, 1, 0, [1, 2, 0, 4]))


@pytest.mark.parametrize('empty', ['', '  ', float('nan'), None])
def test_empty_sides(empty):
    check_page(empty, BOX + ' U+2 0 0 5 5', (0, 0, 2, [-1, -1]))
    check_page('U+1 1 1 U+1 2 2 U+3 4 4', empty, (0, 3, 0, []))
    check_page(empty, empty, (0, 0, 0, []))


def test_empty_pages_dataframe_nan():
    sub = table([('a', np.nan), ('b', 'U+1 25 40'), ('c', np.nan)])
    sol = table([('a', BOX), ('b', np.nan), ('c', np.nan)])
    result = check_same(sub, sol)
    assert result.as_dict() == {'f1': 0.0, 'precision': 0.0, 'recall': 0.0,
                                'tp': 0, 'fp': 1, 'fn': 1}


def test_float_coordinates():
    sol = 'U+1 10.25 20.5 0.5 0.25 U+1 1e1 2E1 3.0e1 4.0e+1'
    check_page('U+1 10.5 20.625 U+1 1.0e1 40', sol, (1, 1, 1, [0, -1]))
    check_page('U+1 10.74 20.74 U+1 10.76 20.5', sol, (2, 0, 0, [0, 1]))


def test_score_page_arrays():
    page = score_page(['U+1', 'U+1'], np.array([[5, 5], [5, 5]], dtype=np.int32),
                      ['U+1'], [[0, 0, 10, 10]])
    assert (page.tp, page.fp, page.fn) == (1, 1, 0)
    assert page.match.dtype == np.int64 and page.match.shape == (1,)
    page = score_page([], np.zeros((0, 2)), ['U+1'], np.zeros((1, 4)))
    assert (page.tp, page.fp, page.fn, page.match.tolist()) == (0, 0, 1, [-1])
    page = score_page([], [], [], [])
    assert (page.tp, page.fp, page.fn) == (0, 0, 0)
    assert page.match.dtype == np.int64 and page.match.shape == (0,)
    with pytest.raises(ValueError, match='pred_points'):
        score_page(['U+1'], np.zeros((2, 2)), [], np.zeros((0, 4)))
    with pytest.raises(ValueError, match='gt_boxes'):
        score_page([], np.zeros((0, 2)), ['U+1'], np.zeros((1, 5)))


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def test_pages_aligned_by_id_in_solution_order():
    sol = table([('p3', BOX), ('p1', BOX + ' ' + BOX), ('p2', '')])
    sub = table([('p1', 'U+1 25 40'), ('p2', 'U+5 1 1'), ('p3', 'U+1 25 40 U+1 25 40')])
    result = check_same(sub, sol)
    assert isinstance(result, F1Result)
    assert list(result.pages.columns) == ['image_id', 'tp', 'fp', 'fn']
    assert result.pages.values.tolist() == [['p3', 1, 1, 0], ['p1', 1, 0, 1], ['p2', 0, 1, 0]]
    assert (result.tp, result.fp, result.fn) == (2, 2, 1)
    assert result.precision == 0.5 and result.recall == 2 / 3


def test_id_on_one_side_only():
    sol = table([('a', BOX), ('b', BOX), ('c', BOX)])
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(table([('a', ''), ('c', '')]), sol)
    assert "'b'" in str(e.value) and 'missing from the submission' in str(e.value)
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(table([('a', ''), ('b', ''), ('c', ''), ('zz_extra', '')]), sol)
    assert "'zz_extra'" in str(e.value) and 'not in the solution' in str(e.value)


def test_many_missing_ids_lists_first_few():
    sol = table([('id%d' % i, '') for i in range(20)])
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(table([('id0', '')]), sol)
    message = str(e.value)
    assert '19 image_id' in message and "'id1'" in message and 'more' in message
    assert "'id19'" not in message


@pytest.mark.parametrize('side', ['submission', 'solution'])
def test_duplicated_ids(side):
    good = table([('a', ''), ('b', '')])
    bad = table([('a', ''), ('b', ''), ('a', '')])
    args = (bad, good) if side == 'submission' else (good, bad)
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(*args)
    assert "'a'" in str(e.value) and side in str(e.value) and 'more than once' in str(e.value)


def test_malformed_in_table_names_id_and_token():
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(table([('page_9', 'U+1 25 forty')]), table([('page_9', BOX)]))
    assert "'page_9'" in str(e.value) and "'forty'" in str(e.value)
    assert 'submission' in str(e.value)
    # Also when the other side of the page is empty.
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(table([('page_9', '')]), table([('page_9', 'U+1 1 2 3')]))
    assert "'page_9'" in str(e.value) and "'U+1 1 2 3'" in str(e.value)


def test_empty_tables():
    result = kuzushiji_f1(table([]), table([]))
    assert result.as_dict() == {'f1': 0.0, 'precision': 0.0, 'recall': 0.0,
                                'tp': 0, 'fp': 0, 'fn': 0}
    assert len(result.pages) == 0


def test_legacy_columns_dataframe():
    sub = pd.DataFrame({'rowId': ['a'], 'PredictionString': ['U+1 25 40']})
    result = kuzushiji_f1(sub, table([('a', BOX)]))
    assert result.f1 == 1.0


def test_missing_columns_dataframe():
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(pd.DataFrame({'image_id': ['a'], 'label': ['']}), table([('a', '')]))
    assert "'label'" in str(e.value) and 'submission' in str(e.value)


def test_bad_table_type():
    with pytest.raises(TypeError):
        kuzushiji_f1(42, table([]))


# ---------------------------------------------------------------------------------------------
# CSV files
# ---------------------------------------------------------------------------------------------

def write(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return str(path)


def test_read_label_table_does_not_mangle(tmp_path):
    path = write(tmp_path / 'sol.csv',
                 'image_id,labels\n0001,NA 10 20 30 40\n1,\nNA,U+1 1 2 3 4\nnan,\n1e3,\n')
    df = read_label_table(path)
    assert list(df['image_id']) == ['0001', '1', 'NA', 'nan', '1e3']
    assert list(df['labels']) == ['NA 10 20 30 40', '', 'U+1 1 2 3 4', '', '']


def test_mangling_ids_and_labels_end_to_end(tmp_path):
    sol = write(tmp_path / 'sol.csv',
                'image_id,labels\n0001,NA 10 20 30 40\n1,U+1 0 0 10 10\nNA,NULL 0 0 5 5\nnan,\n')
    sub = write(tmp_path / 'sub.csv',
                'image_id,labels\nnan,\nNA,NULL 1 1\n1,U+1 5 5 U+1 5 5\n0001,NA 25 40\n')
    result = kuzushiji_f1(sub, sol)
    assert list(result.pages['image_id']) == ['0001', '1', 'NA', 'nan']
    assert result.pages[['tp', 'fp', 'fn']].values.tolist() == [[1, 0, 0], [1, 1, 0],
                                                                [1, 0, 0], [0, 0, 0]]
    check_same(read_label_table(sub), read_label_table(sol))


def test_read_label_table_legacy_columns(tmp_path):
    path = write(tmp_path / 'old.csv', 'rowId,PredictionString\na,U+1 1 1\nb,\n')
    df = read_label_table(path)
    assert list(df.columns) == ['image_id', 'labels']
    assert list(df['labels']) == ['U+1 1 1', '']


def test_read_label_table_missing_file(tmp_path):
    path = str(tmp_path / 'nope.csv')
    with pytest.raises(FileNotFoundError, match='nope.csv'):
        read_label_table(path)
    with pytest.raises(FileNotFoundError, match='nope.csv'):
        kuzushiji_f1(path, table([]))


def test_read_label_table_missing_columns(tmp_path):
    path = write(tmp_path / 'wrong.csv', 'id,label\na,\n')
    with pytest.raises(ValueError) as e:
        read_label_table(path)
    assert 'wrong.csv' in str(e.value) and "'id'" in str(e.value) and "'label'" in str(e.value)


def test_read_label_table_empty_file(tmp_path):
    with pytest.raises(ValueError, match='empty.csv'):
        read_label_table(write(tmp_path / 'empty.csv', ''))


def test_csv_malformed_names_file(tmp_path):
    sol = write(tmp_path / 'sol.csv', 'image_id,labels\nx_1,U+1 0 0 10\n')
    sub = write(tmp_path / 'sub.csv', 'image_id,labels\nx_1,\n')
    with pytest.raises(ValueError) as e:
        kuzushiji_f1(sub, sol)
    assert os.path.basename(sol) in str(e.value) and "'x_1'" in str(e.value)


# ---------------------------------------------------------------------------------------------
# F1 table
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('tp,fp,fn,precision,recall,f1', [
    (0, 0, 0, 0.0, 0.0, 0.0),        # nothing at all
    (0, 5, 0, 0.0, 0.0, 0.0),        # TP + FN == 0
    (0, 0, 5, 0.0, 0.0, 0.0),        # TP + FP == 0
    (0, 3, 4, 0.0, 0.0, 0.0),        # precision == recall == 0
    (5, 0, 0, 1.0, 1.0, 1.0),
    (1, 1, 1, 0.5, 0.5, 0.5),
    (1, 1, 0, 0.5, 1.0, 2 / 3),      # 2 * 0.5 * 1 / 1.5
    (2, 0, 2, 1.0, 0.5, 2 / 3),
    (3, 1, 2, 0.75, 0.6, 2 / 3),     # 0.9 / 1.35
    (4, 1, 0, 0.8, 1.0, 8 / 9),      # 1.6 / 1.8
    (1, 3, 0, 0.25, 1.0, 0.4),       # 0.5 / 1.25
    (9, 1, 3, 0.9, 0.75, 9 / 11),    # 1.35 / 1.65
])
def test_f1_table(tp, fp, fn, precision, recall, f1):
    got_f1, got_p, got_r = f1_from_counts(tp, fp, fn)
    assert got_p == precision and got_r == recall
    assert got_f1 == pytest.approx(f1, rel=1e-15, abs=0.0)
    assert (got_f1, got_p, got_r) == ref_f1(tp, fp, fn)
    # The public scorer summed NumPy integers; float64 division gives the same bits.
    if tp + fp and tp + fn:
        p = np.int64(tp) / np.int64(tp + fp)
        r = np.int64(tp) / np.int64(tp + fn)
        assert got_p == p and got_r == r
        if p > 0 and r > 0:
            assert got_f1 == (2 * p * r) / (p + r)


def test_f1_large_totals_bit_identical():
    rng = np.random.RandomState(3)
    for _ in range(1000):
        tp, fp, fn = (int(v) for v in rng.randint(0, 700000, size=3))
        assert f1_from_counts(tp, fp, fn) == ref_f1(tp, fp, fn)


# ---------------------------------------------------------------------------------------------
# Randomized comparison with the reference
# ---------------------------------------------------------------------------------------------

def _fmt(rng, v):
    """Write a coordinate in one of the forms a submission may use."""
    k = rng.randint(5)
    if k == 0:
        return repr(float(v))
    if k == 1:
        return '%d' % int(round(v))
    if k == 2:
        return '%.1f' % v
    if k == 3:
        return '%.6e' % v
    return repr(float(np.float64(v)))


def random_page(rng):
    """(submission labels, solution labels) of one clustered page."""
    pool = ['U+%04X' % c for c in rng.choice(np.arange(0x3042, 0x3050), size=rng.randint(1, 5),
                                             replace=False)]
    n_clusters = rng.randint(1, 4)
    centres = rng.uniform(0, 300, size=(n_clusters, 2))
    gt = []
    for _ in range(rng.randint(0, 40)):
        cx, cy = centres[rng.randint(n_clusters)] + rng.normal(0, 8, size=2)
        w, h = rng.uniform(1, 30, size=2)
        if rng.rand() < 0.5:
            cx, cy, w, h = (float(round(v)) for v in (cx, cy, w, h))
        gt.append((pool[rng.randint(len(pool))], cx, cy, max(w, 1.0), max(h, 1.0)))
    sol_tokens = []
    for label, x, y, w, h in gt:
        sol_tokens += [label, _fmt(rng, x), _fmt(rng, y), _fmt(rng, w), _fmt(rng, h)]
    # Boxes are re-read from the written strings so that edges are exact.
    parsed = [(sol_tokens[i], *(float(t) for t in sol_tokens[i + 1:i + 5]))
              for i in range(0, len(sol_tokens), 5)]
    preds = []
    for label, x, y, w, h in parsed:
        x2, y2 = x + w, y + h
        kind = rng.randint(10)
        if kind == 0:
            continue                                                  # missed
        if kind == 1:                                                 # on an edge
            edge = rng.randint(4)
            px = [x, x2, x + w / 2, x + w / 2][edge]
            py = [y + h / 2, y + h / 2, y, y2][edge]
        elif kind == 2:                                               # just inside an edge
            px = np.nextafter(x, np.inf) if rng.rand() < 0.5 else np.nextafter(x2, -np.inf)
            py = y + h / 2
        elif kind == 3:                                               # just outside
            px = x + w / 2
            py = np.nextafter(y, -np.inf) if rng.rand() < 0.5 else np.nextafter(y2, np.inf)
        else:
            px, py = x + rng.uniform(0, 1) * w, y + rng.uniform(0, 1) * h
        if kind == 4:
            label = pool[rng.randint(len(pool))]                      # maybe wrong label
        preds.append((label, repr(float(px)), repr(float(py))))
        if kind == 5 or rng.rand() < 0.1:
            preds.append(preds[-1])                                   # duplicate
    for _ in range(rng.randint(0, 6)):                                # strays near clusters
        cx, cy = centres[rng.randint(n_clusters)] + rng.normal(0, 15, size=2)
        preds.append((pool[rng.randint(len(pool))], _fmt(rng, cx), _fmt(rng, cy)))
    order = rng.permutation(len(preds))
    sub_tokens = [t for i in order for t in preds[i]]
    seps = [' ', ' ', ' ', '  ', '\t']
    sub = ''.join(t + seps[rng.randint(len(seps))] for t in sub_tokens)
    if rng.rand() < 0.2:
        sub = ' ' + sub
    return sub, ' '.join(sol_tokens)


def test_fuzz_against_reference():
    rng = np.random.RandomState(1234)
    subs, sols = [], []
    for i in range(400):
        sub, sol = random_page(rng)
        r = rng.rand()
        if r < 0.05:
            sub = ''
        elif r < 0.1:
            sol = ''
        elif r < 0.12:
            sub = sol = ''
        elif r < 0.14:
            sub = np.nan
        subs.append(('page_%03d' % i, sub))
        sols.append(('page_%03d' % i, sol))
    order = rng.permutation(len(subs))
    sub_df = table([subs[i] for i in order])
    sol_df = table(sols)
    result = check_same(sub_df, sol_df)
    # The fuzz must exercise every outcome, and greedy conflicts.
    assert result.tp > 1000 and result.fp > 500 and result.fn > 500
    conflicts = 0
    for (_, sub), (_, sol) in zip(subs, sols):
        pu, pp = parse_submission_labels(sub)
        gu, gb = parse_solution_labels(sol)
        for (label, x1, y1, x2, y2) in zip(gu, *gb.T):
            inside = [j for j, (u, (px, py)) in enumerate(zip(pu, pp))
                      if u == label and x1 < px < x2 and y1 < py < y2]
            conflicts += len(inside) > 1
    assert conflicts > 100
