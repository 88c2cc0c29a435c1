import os

import numpy as np
import pytest

from kr.submission import format_submission_labels
from kr.submission import read_detections
from kr.submission import read_submission
from kr.submission import round_half_up
from kr.submission import write_detections
from kr.submission import write_submission


def test_round_half_up():
    np.testing.assert_array_equal(round_half_up([0.5, 1.5, 2.5, -2.5, 2.49]), [1, 2, 3, -2, 2])


def test_format_submission_labels():
    assert format_submission_labels(['U+3042', 'U+3044'], [[10.5, 20.2], [3, 4]]) == 'U+3042 11 20 U+3044 3 4'
    assert format_submission_labels([], np.zeros((0, 2))) == ''
    with pytest.raises(ValueError, match='1 unicodes for 2 centres'):
        format_submission_labels(['U+3042'], [[1, 2], [3, 4]])


def test_write_submission_every_id_once_in_order(tmp_path):
    path = str(tmp_path / 'submission.csv')
    write_submission(path, {'b': 'U+3042 1 2', 'a': ''}, ['a', 'b'])
    assert open(path).read() == 'image_id,labels\na,\nb,U+3042 1 2\n'
    assert read_submission(path) == {'a': '', 'b': 'U+3042 1 2'}


@pytest.mark.parametrize('labels,ids,message', [
    ({'a': ''}, ['a', 'b'], r"1 test pages have no result: \['b'\]"),
    ({'a': '', 'c': ''}, ['a'], r"1 results are for pages outside the test set: \['c'\]"),
    ({'a': ''}, ['a', 'a'], r"image ids repeated in the submission order: \['a'\]"),
])
def test_write_submission_errors_leave_no_file(tmp_path, labels, ids, message):
    path = str(tmp_path / 'submission.csv')
    with pytest.raises(ValueError, match=message):
        write_submission(path, labels, ids)
    assert os.listdir(str(tmp_path)) == []


def test_interrupted_submission_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'submission.csv')
    write_submission(path, {'a': 'U+3042 1 2'}, ['a'])

    class Boom(dict):
        def __getitem__(self, key):
            if key == 'b':
                raise KeyboardInterrupt
            return dict.__getitem__(self, key)

    with pytest.raises(KeyboardInterrupt):
        write_submission(path, Boom(a='', b=''), ['a', 'b'])
    assert open(path).read() == 'image_id,labels\na,U+3042 1 2\n'
    assert os.listdir(str(tmp_path)) == ['submission.csv']


def test_detection_cache_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    dets = {'p1': (rng.uniform(0, 3900, (7, 4)).astype(np.float32), rng.rand(7).astype(np.float32)),
            'p2': (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))}
    path = str(tmp_path / 'detection.csv')
    write_detections(path, dets)
    back = read_detections(path)
    assert list(back) == ['p1', 'p2']
    for k in dets:
        np.testing.assert_array_equal(back[k][0], dets[k][0])  # exact float32 round trip
        np.testing.assert_array_equal(back[k][1], dets[k][1])
        assert back[k][0].shape == dets[k][0].shape


def test_detection_cache_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.csv'):
        read_detections(str(tmp_path / 'nope.csv'))
    bad = tmp_path / 'bad.csv'
    bad.write_text('image_id,bboxes,scores\np1,1 2 3 4,0.5 0.6\n')
    with pytest.raises(ValueError, match='bad.csv:2 image_id p1: 1 boxes but 2 scores'):
        read_detections(str(bad))
    bad.write_text('image_id,bboxes,scores\np1,1 2 3,0.5\n')
    with pytest.raises(ValueError, match='bad.csv:2 image_id p1: malformed detections'):
        read_detections(str(bad))
