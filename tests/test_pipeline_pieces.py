"""make_pseudo_labels and make_submission with a fake recognizer on a tiny synthetic set."""
import json
import os

import numpy as np
import pytest

from kr.datasets import KuzushijiCharCropDataset
from kr.datasets import KuzushijiPageDataset
from kr.datasets import KuzushijiUnicodeMapping
from kr.inference import Character
from kr.pseudo_labels import make_pseudo_labels
from kr.submission import make_submission
from kr.submission import read_detections
from kr.submission import read_submission


class OracleRecognizer:
    """Recognises test pages from their ground truth; class scores alternate 0.95 / 0.6, and
    only those at or above ``class_threshold`` are returned, as PageRecognizer does."""

    detection_threshold, tta = 0.57, True

    def __init__(self, data_dir, fail_on=None, class_threshold=0.5):
        self.truth = {}
        ds = KuzushijiPageDataset(data_dir, 'test')
        for image_id, bboxes, unicodes in zip(ds.ids, ds.bboxes, ds.unicodes):
            self.truth[image_id] = (bboxes, unicodes)
        self.fail_on, self.class_threshold = fail_on, class_threshold
        self.seen, self.detected, self.cached = [], [], []

    def _chars(self, image_id):
        bboxes, unicodes = self.truth[image_id]
        chars = [Character(u, chr(int(u[2:], 16)), tuple(float(v) for v in b),
                           (float(b[0] + b[2]) / 2, float(b[1] + b[3]) / 2), 0.9,
                           0.95 if n % 2 == 0 else 0.6)
                 for n, (b, u) in enumerate(zip(bboxes, unicodes))]
        return [c for c in chars if c.class_score >= self.class_threshold]

    def recognize_dataset(self, dataset, detections=None, indices=None, desc=''):
        for i in (range(len(dataset)) if indices is None else indices):
            image_id = dataset.ids[i]
            cached = detections is not None and image_id in detections
            self.cached.append(cached)
            if not cached:
                self.detected.append(image_id)
                if detections is not None:
                    bboxes = self.truth[image_id][0]
                    detections[image_id] = (bboxes, np.full(len(bboxes), 0.9, np.float32))
            if image_id == self.fail_on:
                raise KeyboardInterrupt
            self.seen.append(image_id)
            yield image_id, np.asarray(dataset[i]['image']), self._chars(image_id)


@pytest.fixture
def oracle(tiny_kaggle_dir):
    return OracleRecognizer(tiny_kaggle_dir['data_dir'])


@pytest.fixture
def pseudo_oracle(tiny_kaggle_dir):
    return OracleRecognizer(tiny_kaggle_dir['data_dir'], class_threshold=0.9)


def test_pseudo_labels_resume_without_duplicates(tiny_kaggle_dir, pseudo_oracle, tmp_path):
    oracle = pseudo_oracle
    data_dir, out = tiny_kaggle_dir['data_dir'], str(tmp_path / 'pseudo')
    ids = KuzushijiPageDataset(data_dir, 'test').ids
    oracle.fail_on = ids[1]
    with pytest.raises(KeyboardInterrupt):
        make_pseudo_labels(oracle, data_dir, out, run_record={'x': 1})
    assert not os.path.exists(os.path.join(out, 'pseudo_labels.json'))
    assert os.listdir(os.path.join(out, 'pages')) == [ids[0] + '.json']

    oracle.fail_on = None
    summary = make_pseudo_labels(oracle, data_dir, out)
    assert oracle.seen == [ids[0], ids[1], ids[2]]  # page 0 was not recognised twice
    assert summary['pages'] == 3 and summary['pages_resumed'] == 1
    assert summary['threshold'] == 0.9
    records = json.load(open(os.path.join(out, 'pseudo_labels.json'), encoding='utf-8'))
    n_expected = sum((len(oracle.truth[i][1]) + 1) // 2 for i in ids)  # every second one is >= 0.9
    assert len(records) == summary['labels'] == n_expected
    assert len({r['image_path'] for r in records}) == len(records)
    assert all(r['class_score'] >= 0.9 for r in records)
    n_png = sum(len(f) for _, _, f in os.walk(os.path.join(out, 'char_images')))
    assert n_png == len(records)

    mapping = KuzushijiUnicodeMapping(data_dir)
    ds = KuzushijiCharCropDataset(None, index_path=os.path.join(out, 'pseudo_labels.json'),
                                  mapping=mapping)
    item = ds[0]
    x1, y1, x2, y2 = item['bbox']
    w, h = item['image'].size
    side = max(x2 - x1, y2 - y1) * 1.4
    assert side <= w <= side + 2 and side <= h <= side + 2  # floor/ceil may add a pixel

    again = make_pseudo_labels(oracle, data_dir, out)
    assert again['pages_resumed'] == 3 and again['labels'] == len(records)
    make_pseudo_labels(oracle, data_dir, out, restart=True)
    assert oracle.seen[-3:] == ids


def test_make_submission_scores_and_caches(tiny_kaggle_dir, oracle, tmp_path):
    data_dir, out = tiny_kaggle_dir['data_dir'], str(tmp_path / 'sub')
    cache = os.path.join(out, 'detection.csv')
    info = make_submission(oracle, data_dir, out, run_record={'seed': 0})
    rows = read_submission(os.path.join(out, 'submission.csv'))
    order = [l.split(',')[0] for l in open(os.path.join(data_dir, 'sample_submission.csv')).read().split('\n')[1:] if l]
    assert list(rows) == order
    assert info['metrics']['f1'] == 1.0 and info['metrics']['fp'] == 0, info['metrics']
    assert json.load(open(os.path.join(out, 'metrics.json')))['f1'] == 1.0
    assert set(read_detections(cache)) == set(order) and oracle.detected == order
    saved = json.load(open(os.path.join(out, 'submission_info.json')))
    assert saved['seed'] == 0 and saved['class_threshold'] == 0.5 and saved['pages'] == 3
    assert open(os.path.join(out, 'pages.csv')).readline().strip() == 'image_id,tp,fp,fn'
    make_submission(oracle, data_dir, str(tmp_path / 'sub2'), detections=cache)
    assert oracle.detected == order  # second run read every page from the cache
    assert read_detections(str(tmp_path / 'sub2' / 'detection.csv')).keys() == read_detections(cache).keys()


def test_pseudo_labels_reuse_a_detection_cache(tiny_kaggle_dir, pseudo_oracle, tmp_path):
    oracle = pseudo_oracle
    from kr.submission import write_detections
    data_dir = tiny_kaggle_dir['data_dir']
    ids = KuzushijiPageDataset(data_dir, 'test').ids
    cache = str(tmp_path / 'detection.csv')
    write_detections(cache, {ids[0]: (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))})
    make_pseudo_labels(oracle, data_dir, str(tmp_path / 'p'), detections=cache)
    assert oracle.cached == [True, False, False]


def test_an_interrupted_submission_resumes_to_the_same_files(tiny_kaggle_dir, tmp_path):
    data_dir = tiny_kaggle_dir['data_dir']
    ids = KuzushijiPageDataset(data_dir, 'test').ids
    whole = OracleRecognizer(data_dir)
    make_submission(whole, data_dir, str(tmp_path / 'whole'))
    oracle = OracleRecognizer(data_dir, fail_on=ids[2])
    out = str(tmp_path / 'resumed')
    with pytest.raises(KeyboardInterrupt):
        make_submission(oracle, data_dir, out)
    assert not os.path.exists(os.path.join(out, 'submission.csv'))
    assert sorted(os.listdir(os.path.join(out, 'pages'))) == sorted(
        [ids[0] + '.json', ids[1] + '.json', 'settings.json'])
    oracle.fail_on = None
    info = make_submission(oracle, data_dir, out)
    assert oracle.seen == ids  # pages 0 and 1 were not recognised twice
    assert info['pages_resumed'] == 2 and not os.path.exists(os.path.join(out, 'pages'))
    for name in ('submission.csv', 'detection.csv', 'metrics.json', 'pages.csv'):
        with open(os.path.join(out, name), 'rb') as a, \
                open(str(tmp_path / 'whole' / name), 'rb') as b:
            assert a.read() == b.read(), name


def test_a_resumed_submission_refuses_other_settings(tiny_kaggle_dir, tmp_path):
    data_dir = tiny_kaggle_dir['data_dir']
    ids = KuzushijiPageDataset(data_dir, 'test').ids
    out = str(tmp_path / 'sub')
    with pytest.raises(KeyboardInterrupt):
        make_submission(OracleRecognizer(data_dir, fail_on=ids[1]), data_dir, out)
    other = OracleRecognizer(data_dir, class_threshold=0.9)
    with pytest.raises(ValueError, match=r'pages of an unfinished run with other settings '
                                         r'\(class_threshold\).*--restart'):
        make_submission(other, data_dir, out)
    assert make_submission(other, data_dir, out, restart=True)['pages_resumed'] == 0


def test_every_test_image_is_checked_first(tiny_kaggle_dir, tmp_path):
    import shutil
    data_dir = str(tmp_path / 'data')
    shutil.copytree(tiny_kaggle_dir['data_dir'], data_dir)
    ids = KuzushijiPageDataset(data_dir, 'test').ids
    bad = os.path.join(data_dir, 'test_images', ids[2] + '.jpg')
    data = open(bad, 'rb').read()
    open(bad, 'wb').write(data[:len(data) // 2])
    oracle = OracleRecognizer(data_dir)
    with pytest.raises(ValueError, match=r'1 of the 3 page images cannot be read: cannot read '
                                         r'image .*{}\.jpg'.format(ids[2])):
        make_submission(oracle, data_dir, str(tmp_path / 'sub'))
    assert oracle.seen == [] and not os.path.exists(str(tmp_path / 'sub'))
