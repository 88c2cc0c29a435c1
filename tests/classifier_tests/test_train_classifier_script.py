"""scripts/04_train_classifier.py end to end on the hand-made crop set."""

import json
import os
import subprocess
import sys

import pytest

from kr.classifier import training

SCRIPT = os.path.join('scripts', '04_train_classifier.py')
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def read_log(out):
    with open(os.path.join(str(out), 'log')) as f:
        return {entry['iteration']: entry for entry in json.load(f)}


def test_help():
    result = run_script('--help')
    assert result.returncode == 0
    for flag in ('--data-dir', '--out', '--gpu', '--device', '--model', '--epoch', '--iterations',
                 '--batchsize', '--lr', '--weight-decay', '--full-data', '--cv-index',
                 '--resume', '--input-size', '--width', '--sampler', '--seed', '--preset'):
        assert flag in result.stdout
    assert 'xception' in result.stdout and 'balanced' in result.stdout


def test_user_error_exits_with_message(tmp_path):
    result = run_script('--data-dir', tmp_path / 'missing', '--out', tmp_path / 'out')
    assert result.returncode != 0
    assert 'error:' in result.stderr and 'missing not found' in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.slow
def test_two_iterations_then_resume(crop_set, tmp_path):
    common = ['--data-dir', crop_set['data_dir'], '--preset', 'demo', '--model', 'mobilenetv3',
              '--iterations', 2, '--batchsize', 8, '--epoch-size', 8, '--input-size', 32,
              '--width', 0.25, '--lr', 0.02, '--snapshot-interval', 1, '--eval-interval', 1,
              '--log-interval', 1, '--val-samples', 8, '--seed', 0, '--gpu', -1,
              '--lr-drops', '0.5,0.75']
    first = tmp_path / 'first'
    result = run_script(*common, '--out', first, '--sampler', 'balanced')
    assert result.returncode == 0, result.stderr
    args = json.loads((first / 'args.json').read_text())
    assert (args['model'], args['n_classes'], args['width'], args['input_size']) == (
        'mobilenetv3', 8, 0.25, 32)
    assert args['epoch'] == training.PRESETS['demo']['epoch'] and args['device'] == '-1'  # preset; --gpu alias
    assert args['augment'] == 'light' and args['lr_drops'] == [0.5, 0.75]
    # an --iterations run counts its intervals in iterations, and names its model
    # snapshots after them
    for name in ('snapshot_iter_1', 'snapshot_iter_2', 'model_iter_1.npz', 'model_iter_2.npz',
                 'model_final.npz', 'loss.png', 'accuracy.png', 'unicode_translation.csv'):
        assert (first / name).is_file(), name
    log = read_log(first)
    # lr x0.1 after 50% (iteration 1) of the run: the log shows the lr each update used.
    assert log[1]['lr'] == pytest.approx(0.02) and log[2]['lr'] == pytest.approx(0.002)
    assert 'validation/main/accuracy' in log[2]

    second = tmp_path / 'second'
    result = run_script(*common, '--out', second, '--resume', first / 'snapshot_iter_1')
    assert result.returncode == 0, result.stderr
    resumed = read_log(second)
    assert resumed[1] == log[1]  # the log of the first part comes with the snapshot
    assert resumed[2]['epoch'] == log[2]['epoch'] == 2
    assert resumed[2]['lr'] == pytest.approx(log[2]['lr'])


@pytest.mark.parametrize('value, message', [
    ('0.9,0.5', 'lr_drops must be increasing fractions of the run in (0, 1), got 0.9, 0.5'),
    ('0.5,1.0', 'lr_drops must be increasing fractions of the run in (0, 1), got 0.5, 1.0'),
    ('half', "argument --lr-drops: expected comma-separated fractions such as 0.5,0.75, "
             "got 'half'"),
])
def test_bad_lr_drops_are_named(crop_set, tmp_path, value, message):
    result = run_script('--data-dir', crop_set['data_dir'], '--preset', 'demo',
                        '--lr-drops', value, '--out', tmp_path / 'out')
    assert result.returncode != 0
    assert message in result.stderr and 'Traceback' not in result.stderr
