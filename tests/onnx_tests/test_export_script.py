"""scripts/10_export_onnx.py: help, and a tiny export that the runtime loads."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.onnx_tests.conftest import CROP_SIZE
from tests.onnx_tests.conftest import N_CLASSES
from tests.onnx_tests.conftest import save_run
from tests.onnx_tests.conftest import WIDTH

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'scripts', '10_export_onnx.py')


def run(*args, check=True):
    proc = subprocess.run([sys.executable, SCRIPT] + list(args), cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError('script 10 failed ({}):\n{}\n{}'.format(
            proc.returncode, proc.stdout, proc.stderr))
    return proc


def test_help():
    proc = run('--help')
    assert 'usage:' in proc.stdout and '--opset' in proc.stdout


def test_export_and_load(detector, classifier, page, tmp_path):
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    from kr.onnx import load_onnx_models
    det_path = save_run(detector, str(tmp_path / 'detector'), {'width': WIDTH})
    cls_path = save_run(classifier, str(tmp_path / 'classifier'), {
        'model': 'mobilenetv3', 'n_classes': N_CLASSES, 'width': WIDTH,
        'input_size': CROP_SIZE})
    out = str(tmp_path / 'onnx')
    run(det_path, cls_path, '--out', out)
    assert sorted(os.listdir(out)) == ['args.json', 'classifier.onnx', 'detector.onnx',
                                       'onnx_models.json']
    onnx_detector, onnx_classifier = load_onnx_models(out)
    bboxes, scores = onnx_detector.detect(page, min_side=256, score_threshold=0.15)
    expected = detector.detect(page, min_side=256, score_threshold=0.15)
    assert len(bboxes) == len(expected[0]) > 0
    np.testing.assert_allclose(np.sort(scores), np.sort(expected[1]), atol=1e-5)
    indices, _ = onnx_classifier.classify(page, expected[0][:20])
    np.testing.assert_array_equal(indices, classifier.classify(page, expected[0][:20])[0])


def test_missing_weights_are_named(tmp_path):
    proc = run(str(tmp_path / 'no.npz'), str(tmp_path / 'none.npz'), '--out',
               str(tmp_path / 'out'), check=False)
    assert proc.returncode != 0 and 'no.npz' in proc.stderr


def test_int8_needs_data_dir(tmp_path):
    proc = run('det.npz', 'clf.npz', '--out', str(tmp_path / 'out'), '--int8', check=False)
    assert proc.returncode == 2 and '--int8 needs --data-dir' in proc.stderr
    assert not (tmp_path / 'out').exists()
