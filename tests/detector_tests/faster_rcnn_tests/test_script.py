import inspect
import json
import os
import subprocess
import sys

import pytest

from kr.detector.faster_rcnn.training import train_detector

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCRIPT = os.path.join(REPO, 'scripts', '03_train_detector.py')


def run(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, SCRIPT, '--detector', 'faster_rcnn'] + list(args),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_help_documents_every_setting():
    proc = run('--preset', 'seed000', '--help')
    assert proc.returncode == 0, proc.stderr
    text = ' '.join(proc.stdout.split())
    for name in inspect.signature(train_detector).parameters:
        if name not in ('data_dir', 'out', 'device', 'comm', 'run_record'):
            assert '--' + name.replace('_', '-') in text, name
    assert '--anchor-sizes ANCHOR_SIZES Anchor side (input pixels) of each pyramid level' \
        in text
    assert '(default: 8,16,32,64)' in text and '(default: 101)' in text
    proc = run('--preset', 'demo', '--help')
    assert '(default: 101; preset demo: 50)' in ' '.join(proc.stdout.split())


@pytest.mark.slow
def test_demo_preset_runs_two_iterations(detector_data, tmp_path):
    out = str(tmp_path / 'run')
    proc = run('--preset', 'demo', '--iterations', '2', '--val-pages', '1', '--seed', '0',
               '--log-interval', '1',
               '--data-dir', detector_data['data_dir'], '--split-dir',
               detector_data['split_dir'], '--out', out, '--gpu', '-1')
    assert proc.returncode == 0, proc.stderr
    args = json.load(open(os.path.join(out, 'args.json')))
    assert (args['detector'], args['preset'], args['depth'], args['width']) == (
        'faster_rcnn', 'demo', 50, 0.25)
    log = json.load(open(os.path.join(out, 'log')))
    assert [e['iteration'] for e in log] == [1, 2]
    assert all(k in log[-1] for k in ('main/loss/rpn_cls', 'main/loss/rpn_loc',
                                      'main/loss/head_cls', 'main/loss/head_loc',
                                      'validation/main/map', 'validation/main/loss'))
    assert os.path.isfile(os.path.join(out, 'model_final.npz'))
