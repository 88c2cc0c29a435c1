import json

import chainer
import numpy as np
import pytest

from kr.detector import build_detector
from kr.detector import DETECTORS
from kr.detector import detector_family
from kr.detector import load_detector
from kr.detector import Res18UnetCenterNet


def test_the_centernet_family():
    family = DETECTORS['centernet']
    assert family.model is Res18UnetCenterNet and family.name == 'centernet'
    assert family.threshold(None) == family.threshold('default') == 0.62
    assert family.threshold('submission') == 0.57 and family.threshold(0.3) == 0.3
    with pytest.raises(ValueError, match='a probability in \\[0, 1\\], got 1.5'):
        family.threshold(1.5)
    assert family.training().train_detector.__name__ == 'train_detector'
    model = build_detector('centernet', width=0.125)
    assert model.width == 0.125 and model.n_fg_class == 1
    assert detector_family(model) is family and detector_family('centernet') is family
    with pytest.raises(ValueError, match="unknown detector 'yolo': choose one of centernet"):
        detector_family('yolo')


def test_load_dispatches_on_the_recorded_family(tmp_path):
    model = build_detector('centernet', width=0.125)
    path = str(tmp_path / 'model_final.npz')
    chainer.serializers.save_npz(path, model)
    x = np.random.RandomState(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    with chainer.using_config('train', False):
        expected = model(x).array
    for record in ({'width': 0.125}, {'detector': 'centernet', 'width': 0.125}):
        json.dump(record, open(str(tmp_path / 'args.json'), 'w'))  # older runs: no family
        with chainer.using_config('train', False):
            np.testing.assert_array_equal(load_detector(path)(x).array, expected)
    json.dump({'detector': 'yolo'}, open(str(tmp_path / 'args.json'), 'w'))
    with pytest.raises(ValueError, match="unknown detector 'yolo'"):
        load_detector(path)
    json.dump({'width': 0.25}, open(str(tmp_path / 'args.json'), 'w'))
    with pytest.raises(ValueError, match='cannot load .*model_final.npz as centernet detector'):
        load_detector(path)
