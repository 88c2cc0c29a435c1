"""Self-contained classifier run folders: the class table travels with the weights."""
import json
import os
import shutil

import chainer
import pytest

from kr.classifier import build_classifier
from kr.classifier import load_class_table
from kr.classifier import load_classifier
from kr.classifier.registry import save_class_table
from kr.datasets import KuzushijiUnicodeMapping

TABLE = 'Unicode,char\nU+3042,あ\nU+3044,い\nU+3046,う\n'


@pytest.fixture
def run(tmp_path):
    """A classifier run folder (weights, args.json, class table) and its data folder."""
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'unicode_translation.csv').write_text(TABLE, encoding='utf-8')
    out = tmp_path / 'run'
    model = build_classifier('resnet18', 3, width=0.25, input_size=24)
    save_class_table(KuzushijiUnicodeMapping(str(data)), str(out))
    chainer.serializers.save_npz(str(out / 'model_final.npz'), model)
    (out / 'args.json').write_text(json.dumps(
        {'model': 'resnet18', 'n_classes': 3, 'width': 0.25, 'input_size': 24}))
    return {'data': str(data), 'model': str(out / 'model_final.npz'), 'out': out}


def test_the_run_folder_alone_gives_the_table(run):
    shutil.rmtree(run['data'])
    mapping = load_class_table(run['model'])
    assert mapping.unicodes == ['U+3042', 'U+3044', 'U+3046']
    assert mapping.path == os.path.join(str(run['out']), 'unicode_translation.csv')


def test_a_data_folder_is_checked_against_it(run, tmp_path):
    assert load_class_table(run['model'], run['data']).unicodes[2] == 'U+3046'
    shuffled = tmp_path / 'shuffled.csv'
    shuffled.write_text('Unicode,char\nU+3042,あ\nU+3046,う\nU+3044,い\n', encoding='utf-8')
    with pytest.raises(ValueError, match='row 2 is U\\+3044 there but U\\+3046 here'):
        load_class_table(run['model'], str(shuffled))
    longer = tmp_path / 'longer.csv'
    longer.write_text(TABLE + 'U+3048,え\n', encoding='utf-8')
    with pytest.raises(ValueError, match='lists 4 classes but the model was trained with 3'):
        load_class_table(run['model'], str(longer))


def test_an_older_run_without_a_table(run):
    os.remove(str(run['out'] / 'unicode_translation.csv'))
    with pytest.raises(FileNotFoundError, match='has no class table; pass the data folder'):
        load_class_table(run['model'])
    assert len(load_class_table(run['model'], run['data'])) == 3


def test_weights_of_another_kind_are_named(run, tmp_path):
    other = tmp_path / 'other'
    other.mkdir()
    chainer.serializers.save_npz(str(other / 'model_final.npz'),
                                 build_classifier('mobilenetv3', 3, width=0.25))
    shutil.copy(str(run['out'] / 'args.json'), str(other / 'args.json'))
    with pytest.raises(ValueError, match='cannot load .*other/model_final.npz as resnet18 '
                                         'classifier weights'):
        load_classifier(str(other / 'model_final.npz'))
    (other / 'model_final.npz').write_bytes(b'')
    with pytest.raises(ValueError, match='model_final.npz as resnet18 classifier weights'):
        load_classifier(str(other / 'model_final.npz'))


def test_dropout_is_built_and_kept_by_the_run(run):
    assert build_classifier('resnet18', 3, width=0.25).head.dropout_ratio == 0.5
    assert build_classifier('mobilenetv3', 3, width=0.25).head.dropout_ratio == 0.2
    assert build_classifier('resnet18', 3, width=0.25, dropout=0.0).head.dropout_ratio == 0.0
    # A run without the key (before it was recorded) gets the architecture's own.
    assert load_classifier(run['model']).head.dropout_ratio == 0.5
    args = json.loads((run['out'] / 'args.json').read_text())
    (run['out'] / 'args.json').write_text(json.dumps(dict(args, dropout=0.0)))
    assert load_classifier(run['model']).head.dropout_ratio == 0.0


@pytest.mark.parametrize('dropout', [-0.1, 1.0])
def test_a_dropout_outside_its_range_is_refused(dropout):
    with pytest.raises(ValueError, match=r'dropout must be in \[0, 1\), got {}'.format(dropout)):
        build_classifier('resnet18', 3, dropout=dropout)
