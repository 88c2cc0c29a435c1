import csv
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join('scripts', '00_make_synthetic_dataset.py')


def run(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_help():
    result = run('--help')
    assert result.returncode == 0
    for flag in ('--out', '--train-pages', '--test-pages', '--seed', '--workers', '--overwrite',
                 '--page-height', '--system-fonts', '--font'):
        assert flag in result.stdout


@pytest.mark.slow
def test_tiny_run(tmp_path):
    out = str(tmp_path / 'ds')
    result = run('--out', out, '--train-pages', '2', '--test-pages', '1', '--page-height', '300',
                 '--workers', '1', '--seed', '3')
    assert result.returncode == 0, result.stderr
    for name in ('train.csv', 'test_labels.csv', 'sample_submission.csv',
                 'unicode_translation.csv', 'synthetic_info.json'):
        assert os.path.isfile(os.path.join(out, name))
    with open(os.path.join(out, 'train.csv'), encoding='utf-8', newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['image_id', 'labels'] and len(rows) == 3
    assert len(os.listdir(os.path.join(out, 'train_images'))) == 2
    assert len(os.listdir(os.path.join(out, 'test_images'))) == 1
    assert 'characters' in result.stderr

    # Running again without --overwrite is a clear error naming the flag.
    again = run('--out', out, '--train-pages', '2', '--test-pages', '1')
    assert again.returncode == 2
    assert '--overwrite' in again.stderr and 'Traceback' not in again.stderr


def test_bad_count():
    result = run('--train-pages', '0', '--out', 'never-created')
    assert result.returncode == 2
    assert '--train-pages' in result.stderr
    assert not os.path.exists(os.path.join(REPO, 'never-created'))
