import json
import os

import numpy as np
import pytest

from kr.reading.ground_truth import load_reading_truth
from kr.reading.metrics import successor_links
from kr.reading.order import reading_order
from kr.synthetic import make_synthetic_dataset


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('synthetic') / 'ds')
    make_synthetic_dataset(out, seed=5, workers=1, train_pages=1, test_pages=6,
                           page_height=800, empty_page_rate=0.2)
    return out


def test_file_matches_the_labels(dataset):
    truth = load_reading_truth(dataset)
    with open(os.path.join(dataset, 'test_reading_order.json'), encoding='utf-8') as f:
        raw = json.load(f)
    assert raw['format_version'] == 1
    assert [p.image_id for p in truth] == [p['image_id'] for p in raw['pages']]
    assert len(truth) == 6 and sum(len(p.unicodes) == 0 for p in truth) == 1
    for p in truth:
        assert len(p.unicodes) == len(p.bboxes) == len(p.column) == len(p.ruby)
        assert (p.block == 0).all()
        if len(p.unicodes):
            # columns are numbered from 0 on the right, in label order
            assert p.column[0] == 0 and (np.diff(p.column) >= 0).all()
        main = [chr(int(u[2:], 16)) for u, r in zip(p.unicodes, p.ruby) if not r]
        assert p.text.replace('\n', '') == ''.join(main)
        assert p.text.count('\n') == (len(set(p.column[~p.ruby].tolist())) - 1 if main else 0)


def test_reading_order_recovers_the_truth(dataset):
    # the boxes in a shuffled order give back the labels' order, columns and ruby
    rng = np.random.RandomState(0)
    for p in load_reading_truth(dataset):
        n = len(p.unicodes)
        perm = rng.permutation(n)
        layout = reading_order(p.bboxes[perm], image_size=(500, 800))
        back = np.argsort(perm)
        right, total = successor_links(perm[layout.order], np.arange(n))
        assert total == max(n - 1, 0)
        # Since the pages have thin, elongated kana (し, く...) a character offset from its
        # column's line above one can lose its link (3 of 276 on one of these pages with the
        # brush fonts, none with IPAexGothic alone): at most 2 % of the links may be wrong;
        # the ruby flags must all be right.
        assert right >= total - total // 50, (p.image_id, right, total)
        assert (layout.ruby[back] == p.ruby).all()
        # (a second annotation column may stand nearer the next main column: which column a
        # ruby glosses is only checked through the order); a lost link makes a column of
        # its own and shifts the numbers of the columns after it: checked on pages read
        # entirely right.
        main = ~p.ruby
        if right == total:
            assert (layout.column_index[back][main] == p.column[main]).all()


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='test_reading_order.json not found'):
        load_reading_truth(str(tmp_path))
