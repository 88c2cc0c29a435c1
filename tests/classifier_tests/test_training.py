import os
import shutil

import chainer
import numpy as np
import pytest

from kr.classifier import ClassifierTransform
from kr.classifier import build_classifier
from kr.classifier import training
from kr.datasets import KuzushijiCharCropDataset
from kr.datasets import KuzushijiUnicodeMapping
from kr.training import resolve_preset


@pytest.fixture
def crop_copy(crop_set, tmp_path):
    """A writable copy of the hand-made crop set."""
    data_dir = str(tmp_path / 'kuzushiji-recognition')
    shutil.copytree(crop_set['data_dir'], data_dir)
    shutil.copytree(crop_set['crop_dir'], data_dir + '-crops')
    return {'data_dir': data_dir, 'crop_dir': data_dir + '-crops'}


def test_make_datasets(crop_set):
    mapping = KuzushijiUnicodeMapping(crop_set['data_dir'])
    train, val, labels = training.make_datasets(crop_set['crop_dir'], mapping, input_size=24,
                                                seed=0)
    assert len(train) == 96 and len(val) == 24 and labels.shape == (96,)
    # Class 0 is a table row that no crop uses.
    assert set(labels.tolist()) == {1, 2, 3, 4, 5, 6}
    x, label = train[0]
    assert x.shape == (3, 24, 24) and x.dtype == np.float32
    assert label == labels[0] and label.dtype == np.int32
    full, val_subset, _ = training.make_datasets(crop_set['crop_dir'], mapping, full_data=True,
                                                 val_samples=10)
    assert len(full) == 120 and len(val_subset) == 10
    again = training.make_datasets(crop_set['crop_dir'], mapping, val_samples=10)[1]
    assert [again[i][1] for i in range(10)] == [val_subset[i][1] for i in range(10)]


def test_missing_crop_file_is_named(crop_copy):
    victim = os.path.join(crop_copy['crop_dir'], 'char_images', 'val-0_002',
                          'val-0_002_0003.png')
    os.remove(victim)
    mapping = KuzushijiUnicodeMapping(crop_copy['data_dir'])
    with pytest.raises(FileNotFoundError, match='val-0_002_0003.png.*02_crop_characters'):
        training.make_datasets(crop_copy['crop_dir'], mapping)


def test_unicode_absent_from_mapping(crop_copy):
    path = os.path.join(crop_copy['data_dir'], 'unicode_translation.csv')
    with open(path, encoding='utf-8') as f:
        lines = f.readlines()
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(line for line in lines if not line.startswith('U+306E'))
    with pytest.raises(ValueError, match='U\\+306E'):
        training.train_classifier(crop_copy['data_dir'], crop_copy['data_dir'] + '-out')


def test_missing_crop_index(crop_set, tmp_path):
    with pytest.raises(FileNotFoundError, match='02_crop_characters'):
        training.train_classifier(crop_set['data_dir'], str(tmp_path),
                                  crop_dir=str(tmp_path / 'nowhere'))


@pytest.mark.parametrize('bad', [dict(epoch=0), dict(batchsize=0), dict(lr=0),
                                 dict(weight_decay=-1), dict(model='vgg'),
                                 dict(sampler='weighted'), dict(augment='heavy'),
                                 dict(resume='no_such_snapshot')])
def test_bad_options(crop_set, tmp_path, bad):
    kwargs = dict(iterations=1, batchsize=4, epoch_size=4, input_size=16, width=0.25)
    kwargs.update(bad)
    with pytest.raises((ValueError, FileNotFoundError)):
        training.train_classifier(crop_set['data_dir'], str(tmp_path), **kwargs)


def test_presets():
    settings = resolve_preset(training.train_classifier, training.PRESETS, 'demo', epoch=None,
                              lr=0.3, batchsize=None)
    assert settings['lr'] == 0.3
    assert settings['epoch'] == training.PRESETS['demo']['epoch']
    assert settings['input_size'] == training.PRESETS['demo']['input_size']
    assert training.PRESETS['full'] == {}
    full = resolve_preset(training.train_classifier, training.PRESETS, 'full')
    assert (full['lr'], full['batchsize'], full['epoch'], full['epoch_size'],
            full['input_size'], full['weight_decay'], full['model'], full['lr_drops']) == \
        (0.1, 192, 1000, 20000, 112, 1e-4, 'mobilenetv3', (0.5, 0.75))
    assert settings['lr_drops'] == (0.7, 0.9)
    with pytest.raises(ValueError, match='preset'):
        resolve_preset(training.train_classifier, training.PRESETS, 'huge')


@pytest.mark.slow
def test_overfit_a_few_classes(crop_set, tmp_path):
    """A short CPU run learns the 6 hand-made classes: >= 95% on its training crops.

    The margin: at lr 0.1 and 75 iterations (this test before) the run ended on the edge
    of convergence, and the thread count alone (BLAS and numba summation order) moved the
    accuracy: 0.927 with 2 threads and 1.0 with 1 for seed 0, 0.81 to 1.0 over seeds 0-5.
    At lr 0.05 and 120 iterations, of 24 runs (seeds 0-11, 1 and 2 threads) 23 reached
    1.0 and the lowest 0.990 (95 of 96 crops), so 0.95 (92 of 96) leaves 3 crops of margin
    below the worst run seen; a classifier that does not learn stays near chance, 1/6
    (checked below on the untrained net).
    """
    np.random.seed(0)
    result = training.train_classifier(
        crop_set['data_dir'], str(tmp_path), model='mobilenetv3', epoch=40, batchsize=32,
        lr=0.05, epoch_size=96, input_size=32, width=0.35, augment='none', seed=0,
        snapshot_interval=40, eval_interval=40, log_interval=15, val_samples=None)
    assert result.iteration == 120
    mapping = KuzushijiUnicodeMapping(crop_set['data_dir'])
    model = build_classifier('mobilenetv3', len(mapping), width=0.35, input_size=32)
    crops = KuzushijiCharCropDataset(crop_set['crop_dir'], 'train', 0, mapping)
    centre = ClassifierTransform(32, train=False)
    x = np.stack([centre(crops[i])[0] for i in range(len(crops))])

    def accuracy():
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return float((model(x).array.argmax(axis=1) == crops.labels).mean())

    untrained = accuracy()
    assert untrained < 0.5, untrained  # the check below can fail: an untrained net is near 1/6
    chainer.serializers.load_npz(result.model_path, model)
    trained = accuracy()
    assert trained >= 0.95, trained
    assert os.path.isfile(str(tmp_path / 'model_40.npz'))
    assert os.path.isfile(str(tmp_path / 'log'))



@pytest.mark.slow
def test_loader_processes(crop_set, tmp_path):
    result = training.train_classifier(
        crop_set['data_dir'], str(tmp_path), model='resnet18', iterations=2, batchsize=8,
        epoch_size=16, input_size=24, width=0.25, workers=2, sampler='balanced',
        snapshot_interval=1, eval_interval=1, log_interval=1, val_samples=8)
    assert result.iteration == 2 and 'validation/main/accuracy' in result.observation
