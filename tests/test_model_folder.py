import json
import os

import chainer
import numpy as np
import pytest

from kr.detector import Res18UnetCenterNet
from kr.inference import PageRecognizer
from kr.model_folder import load_model_folder
from kr.model_folder import make_model_folder
from kr.model_folder import read_model_folder

CLASS_TABLE = 'Unicode,char\nU+3042,あ\nU+3044,い\n'


def tiny_runs(root):
    """An untrained detector run and classifier run (weights, args.json, class table)."""
    from kr.classifier import build_classifier
    np.random.seed(0)      # Chainer's initialisers draw from NumPy's global generator
    paths = []
    for name, model, args in (
            ('det', Res18UnetCenterNet(width=0.125), {'width': 0.125}),
            ('clf', build_classifier('mobilenetv3', 2, width=0.25, input_size=32),
             {'model': 'mobilenetv3', 'n_classes': 2, 'width': 0.25, 'input_size': 32})):
        os.makedirs(os.path.join(root, name))
        chainer.serializers.save_npz(os.path.join(root, name, 'model_final.npz'), model)
        with open(os.path.join(root, name, 'args.json'), 'w') as f:
            json.dump(args, f)
        paths.append(os.path.join(root, name, 'model_final.npz'))
    with open(os.path.join(root, 'clf', 'unicode_translation.csv'), 'w', encoding='utf-8') as f:
        f.write(CLASS_TABLE)
    return paths


def tiny_model_folder(root, **kwargs):
    """A model folder of untrained models (seeded weights: some dozens of their peaks on a
    small random page pass 0.2, thousands pass 0)."""
    det, clf = tiny_runs(os.path.join(root, 'runs'))
    out = os.path.join(root, 'model')
    kwargs = dict(dict(detection_threshold=0.2, class_threshold=0.0, tta=False), **kwargs)
    make_model_folder(det, clf, out, **kwargs)
    return out


def test_make_and_load(tmp_path):
    det, clf = tiny_runs(str(tmp_path / 'runs'))
    out = str(tmp_path / 'model')
    record = make_model_folder(det, clf, out, class_threshold=0.25)
    assert sorted(os.listdir(out)) == ['classifier', 'detector', 'model.json']
    assert sorted(os.listdir(os.path.join(out, 'classifier'))) == [
        'args.json', 'model_final.npz', 'unicode_translation.csv']
    assert sorted(os.listdir(os.path.join(out, 'detector'))) == ['args.json', 'model_final.npz']
    assert record['detection_threshold'] == 0.57      # CenterNet's submission threshold
    assert record['class_threshold'] == 0.25 and record['tta'] is True
    assert record['detector'] == os.path.join('detector', 'model_final.npz')
    assert record['onnx'] is None and record['classes'] == 2
    assert json.load(open(os.path.join(out, 'model.json'))) == record
    # self-contained: the runs can go
    for path in (det, clf):
        os.remove(path)
    rec = load_model_folder(out, tta=False)
    assert isinstance(rec, PageRecognizer)
    assert rec.detection_threshold == 0.57 and rec.class_threshold == 0.25 and not rec.tta
    assert rec.mapping.unicodes == ['U+3042', 'U+3044']
    assert read_model_folder(out)['detector'] == os.path.join(out, 'detector', 'model_final.npz')


def test_errors_name_the_folder_and_files(tmp_path):
    det, clf = tiny_runs(str(tmp_path / 'runs'))
    with pytest.raises(FileNotFoundError, match='--model .*nowhere.*kr make-model-folder'):
        load_model_folder(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='missing.npz'):
        make_model_folder(str(tmp_path / 'missing.npz'), clf, str(tmp_path / 'm'))
    make_model_folder(det, clf, str(tmp_path / 'm'))
    with pytest.raises(FileExistsError, match='--overwrite'):
        make_model_folder(det, clf, str(tmp_path / 'm'))
    make_model_folder(det, clf, str(tmp_path / 'm'), overwrite=True, class_threshold=0.75)
    assert read_model_folder(str(tmp_path / 'm'))['class_threshold'] == 0.75
    with pytest.raises(ValueError, match='class threshold'):
        make_model_folder(det, clf, str(tmp_path / 'n'), class_threshold=2.0)
    with pytest.raises(ValueError, match="unknown backend 'tvm'"):
        load_model_folder(str(tmp_path / 'm'), backend='tvm')
    assert not os.path.exists(str(tmp_path / 'n'))


def test_onnx_files_serve_the_onnxruntime_backend(tmp_path):
    pytest.importorskip('onnxruntime')
    out = tiny_model_folder(str(tmp_path), onnx=True)
    assert sorted(os.listdir(os.path.join(out, 'onnx'))) == [
        'classifier.onnx', 'detector.onnx', 'onnx_models.json']
    page = np.random.RandomState(1).randint(0, 255, (64, 48, 3)).astype(np.uint8)
    ref = load_model_folder(out).recognize(page)
    ort = load_model_folder(out, backend='onnxruntime')
    assert type(ort.detector).__name__.startswith('Onnx')
    assert ort.detection_threshold == 0.2 and not ort.tta
    got = ort.recognize(page)
    assert len(ref) > 0 and abs(len(got) - len(ref)) <= max(1, len(ref) // 100)


def drop_setting(out, key):
    """Remove ``key`` from a folder's model.json, as in a folder made before it existed."""
    meta = os.path.join(out, 'model.json')
    with open(meta) as f:
        record = json.load(f)
    del record[key]
    with open(meta, 'w') as f:
        json.dump(record, f)


def test_first_pass_side_is_recorded_and_can_be_overridden(tmp_path):
    out = tiny_model_folder(str(tmp_path), tta=True, first_min_side=512)
    record = read_model_folder(out)
    assert record['first_min_side'] == 512 and record['int8'] is False
    assert load_model_folder(out)._detect.first_min_side == 512
    assert load_model_folder(out, first_min_side=320)._detect.first_min_side == 320
    # a folder without the key (made before it existed) runs the original's first pass
    drop_setting(out, 'first_min_side')
    assert load_model_folder(out)._detect.first_min_side == 832


def test_nested_overlap_is_recorded_and_can_be_overridden(tmp_path):
    out = tiny_model_folder(str(tmp_path), nested_overlap=0.0)
    assert read_model_folder(out)['nested_overlap'] == 0.0
    assert load_model_folder(out).nested_overlap == 0.0
    assert load_model_folder(out, nested_overlap=0.7).nested_overlap == 0.7
    # a folder made before the setting existed suppresses nested boxes at the default
    drop_setting(out, 'nested_overlap')
    assert load_model_folder(out).nested_overlap == 0.5
    with pytest.raises(ValueError, match=r'nested_overlap \(--nested-overlap\)'):
        tiny_model_folder(str(tmp_path / 'bad'), nested_overlap=2)


def test_classify_tta_is_recorded_and_can_be_overridden(tmp_path):
    out = tiny_model_folder(str(tmp_path), classify_tta=True)
    assert read_model_folder(out)['classify_tta'] is True
    assert load_model_folder(out).classify_tta is True
    assert load_model_folder(out, classify_tta=False).classify_tta is False
    drop_setting(out, 'classify_tta')
    assert load_model_folder(out).classify_tta is False     # folders made before: one crop


def test_int8_needs_onnx_and_calibration_data(tmp_path):
    det, clf = tiny_runs(str(tmp_path / 'runs'))
    for kwargs in ({'int8': True}, {'int8': True, 'onnx': True},
                   {'int8': True, 'data_dir': str(tmp_path)}):
        with pytest.raises(ValueError, match='needs --onnx and --data-dir'):
            make_model_folder(det, clf, str(tmp_path / 'm'), **kwargs)
    assert not os.path.exists(str(tmp_path / 'm'))


def test_int8_folder_runs_the_quantised_models(tmp_path, tiny_kaggle_dir):
    pytest.importorskip('onnxruntime')
    import shutil
    det, clf = tiny_runs(str(tmp_path / 'runs'))
    # the training pages of the tiny set, with the tiny classifier's class table
    data_dir = str(tmp_path / 'data')
    shutil.copytree(tiny_kaggle_dir['data_dir'], data_dir)
    with open(os.path.join(data_dir, 'unicode_translation.csv'), 'w', encoding='utf-8') as f:
        f.write(CLASS_TABLE)
    out = str(tmp_path / 'model')
    record = make_model_folder(det, clf, out, onnx=True, int8=True, data_dir=data_dir)
    assert record['int8'] is True
    files = os.listdir(os.path.join(out, 'onnx'))
    assert 'detector.int8.onnx' in files and 'classifier.int8.onnx' in files
    rec = load_model_folder(out, backend='onnxruntime')
    assert rec.detector.path == os.path.join(out, 'onnx', 'detector.int8.onnx')
    assert rec.classifier.path == os.path.join(out, 'onnx', 'classifier.int8.onnx')
