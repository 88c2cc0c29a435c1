import inspect
import json
import os
import shutil
import subprocess
import sys

import pytest

from kr.detector import DETECTORS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'scripts', '03_train_detector.py')
#: A run that takes seconds: a quarter-width net on 64 px crops of two pages.
TINY = ['--preset', 'demo', '--optimizer', 'nesterov', '--lr', '0.01', '--batchsize', '2',
        '--crop-size', '64', '--val-pages', '1',
        '--log-interval', '1', '--snapshot-interval', '1', '--seed', '0']


def run(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _log(out):
    with open(os.path.join(out, 'log')) as f:
        return json.load(f)


def test_help():
    proc = run('--help')
    assert proc.returncode == 0
    for flag in ('--data-dir', '--out', '--gpu', '--device', '--epoch', '--iterations',
                 '--batchsize', '--lr', '--full-data', '--cv-index', '--resume', '--width',
                 '--crop-size', '--seed', '--preset', '--workers'):
        assert flag in proc.stdout


@pytest.mark.parametrize('family', sorted(DETECTORS))
def test_help_documents_every_setting_of_every_preset(family):
    training = DETECTORS[family].training()
    params = inspect.signature(training.train_detector).parameters
    for preset, values in sorted(training.PRESETS.items()):
        proc = run('--detector', family, '--preset', preset, '--help')
        assert proc.returncode == 0, proc.stderr
        text = ' '.join(proc.stdout.split())
        for name, param in params.items():
            if param.default is inspect.Parameter.empty or name in ('comm', 'run_record'):
                continue
            assert '--' + name.replace('_', '-') in text, (family, preset, name)
        for name, value in values.items():
            assert 'preset {}: {}'.format(preset, 'none' if value is None else value) in text \
                or value == inspect.signature(training.train_detector).parameters[name].default


def test_flags_of_another_family_are_refused():
    proc = run('--detector', 'centernet', '--no-such-setting', '1')
    assert proc.returncode == 2 and 'unrecognized arguments: --no-such-setting' in proc.stderr
    proc = run('--preset', 'nope', '--help')
    assert proc.returncode == 2 and "unknown preset 'nope'" in proc.stderr


@pytest.mark.slow
def test_train_then_resume(detector_data, tmp_path):
    out = str(tmp_path / 'run')
    data = ['--data-dir', detector_data['data_dir'], '--split-dir', detector_data['split_dir']]
    proc = run(*data, *TINY, '--out', out, '--iterations', '2', '--gpu', '-1')
    assert proc.returncode == 0, proc.stderr
    for name in ('args.json', 'log', 'snapshot_iter_1', 'snapshot_iter_2'):
        assert os.path.isfile(os.path.join(out, name)), name
    assert any(n.startswith('model_') and n.endswith('.npz') for n in os.listdir(out))
    args = json.load(open(os.path.join(out, 'args.json')))
    assert args['preset'] == 'demo' and args['iterations'] == 2 and 'versions' in args
    log = _log(out)
    assert [e['iteration'] for e in log] == [1, 2]
    assert all(k in log[0] for k in ('main/loss', 'main/loss/score', 'main/loss/size',
                                     'main/loss/offset', 'lr'))
    assert 'validation/main/map' in log[-1] and 'validation/main/loss' in log[-1]
    lr0 = log[0]['lr']
    # Drops at 50% and 75% of 2 iterations: after iterations 1 and 2.
    assert log[1]['lr'] == pytest.approx(lr0 * 0.1)

    proc = run(*data, *TINY, '--out', out, '--iterations', '3', '--resume',
               os.path.join(out, 'snapshot_iter_2'))
    assert proc.returncode == 0, proc.stderr
    log = _log(out)
    assert [e['iteration'] for e in log] == [1, 2, 3]
    # Iteration 3 runs with the lr the snapshot ended with, not the initial one.
    assert log[2]['lr'] == pytest.approx(lr0 * 0.01)
    assert os.path.isfile(os.path.join(out, 'snapshot_iter_3'))


@pytest.mark.slow
def test_corrupt_image_is_named(detector_data, tmp_path):
    data_dir = str(tmp_path / 'data')
    shutil.copytree(detector_data['data_dir'], data_dir)
    images = sorted(os.listdir(os.path.join(data_dir, 'train_images')))
    for name in images:
        with open(os.path.join(data_dir, 'train_images', name), 'wb') as f:
            f.write(b'not a jpeg')
    # Loaded by worker processes: their error reaches the user too.
    proc = run('--data-dir', data_dir, '--split-dir', detector_data['split_dir'], *TINY,
               '--out', str(tmp_path / 'run'), '--iterations', '1', '--workers', '2')
    assert proc.returncode != 0
    assert 'cannot read image' in proc.stderr and '.jpg' in proc.stderr


def test_missing_split_names_script_01(tmp_path):
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    (data_dir / 'train.csv').write_text('image_id,labels\n')
    proc = run('--data-dir', str(data_dir), *TINY, '--out', str(tmp_path / 'run'),
               '--iterations', '1')
    assert proc.returncode != 0 and '01_split_train_val.py' in proc.stderr


@pytest.fixture
def finished_run(tmp_path):
    """The folder of a finished detector run (args.json and model_final.npz)."""
    import chainer
    from kr.detector import build_detector
    run = tmp_path / 'run'
    run.mkdir()
    chainer.serializers.save_npz(str(run / 'model_final.npz'), build_detector(width=0.125))
    (run / 'args.json').write_text(json.dumps({'detector': 'centernet', 'width': 0.125}))
    return run


def _files(folder):
    return {n: open(os.path.join(str(folder), n), 'rb').read() for n in os.listdir(str(folder))}


@pytest.mark.slow
def test_a_finished_run_is_not_trained_over(detector_data, finished_run):
    before = _files(finished_run)
    proc = run('--data-dir', detector_data['data_dir'], '--split-dir', detector_data['split_dir'],
               *TINY, '--iterations', '1', '--out', str(finished_run))
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert 'already holds a finished run' in proc.stderr and '--resume' in proc.stderr
    assert _files(finished_run) == before


@pytest.mark.slow
def test_a_model_file_given_to_resume(detector_data, finished_run, tmp_path):
    proc = run('--data-dir', detector_data['data_dir'], '--split-dir', detector_data['split_dir'],
               *TINY, '--iterations', '1', '--out', str(tmp_path / 'new'),
               '--resume', str(finished_run / 'model_final.npz'))
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: cannot resume from') and 'model_final.npz' in last
    assert 'snapshot_iter_<n>' in last
