"""Tests of scripts/08_evaluate.py, run as a subprocess."""

import json
import os
import subprocess
import sys

import pandas as pd

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join('scripts', '08_evaluate.py')

SOLUTION = ('image_id,labels\n'
            'p1,U+1 10 20 30 40 U+2 0 0 5 5\n'
            '0002,U+1 10 20 30 40\n'
            'p3,\n')
# p1: one TP (U+1) and the U+2 box missed; 0002: TP + duplicate FP; p3: one FP.
SUBMISSION = ('image_id,labels\n'
              '0002,U+1 25 40 U+1 25 40\n'
              'p3,U+3 1 1\n'
              'p1,U+1 25.5 40.5\n')


def run(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def write(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


def test_help():
    proc = run('--help')
    assert proc.returncode == 0, proc.stderr
    assert '--pages-out' in proc.stdout and 'SUBMISSION' in proc.stdout.upper()


def test_run_prints_json_last(tmp_path):
    sub = write(tmp_path / 'sub.csv', SUBMISSION)
    sol = write(tmp_path / 'sol.csv', SOLUTION)
    proc = run(sub, sol)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {'f1', 'precision', 'recall', 'tp', 'fp', 'fn'}
    assert (result['tp'], result['fp'], result['fn']) == (2, 2, 1)
    assert result['precision'] == 0.5
    assert result['recall'] == 2 / 3
    assert result['f1'] == (2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3)


def test_pages_out(tmp_path):
    sub = write(tmp_path / 'sub.csv', SUBMISSION)
    sol = write(tmp_path / 'sol.csv', SOLUTION)
    out = tmp_path / 'out' / 'pages.csv'
    proc = run(sub, sol, '--pages-out', out)
    assert proc.returncode == 0, proc.stderr
    pages = pd.read_csv(out, dtype={'image_id': str}, keep_default_na=False)
    assert list(pages.columns) == ['image_id', 'tp', 'fp', 'fn']
    assert pages.values.tolist() == [['p1', 1, 0, 1], ['0002', 1, 1, 0], ['p3', 0, 1, 0]]
    # Written atomically: no temporary file left beside it.
    assert sorted(os.listdir(out.parent)) == ['pages.csv']


def test_missing_file_exits_nonzero(tmp_path):
    sol = write(tmp_path / 'sol.csv', SOLUTION)
    proc = run(tmp_path / 'no_such_submission.csv', sol)
    assert proc.returncode != 0
    assert 'no_such_submission.csv' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_malformed_exits_nonzero(tmp_path):
    sub = write(tmp_path / 'bad_sub.csv', 'image_id,labels\np1,U+1 25\n0002,\np3,\n')
    sol = write(tmp_path / 'sol.csv', SOLUTION)
    proc = run(sub, sol)
    assert proc.returncode != 0
    assert 'bad_sub.csv' in proc.stderr and "'p1'" in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_ids_exit_nonzero(tmp_path):
    sub = write(tmp_path / 'sub.csv', 'image_id,labels\np1,\n')
    sol = write(tmp_path / 'sol.csv', SOLUTION)
    proc = run(sub, sol)
    assert proc.returncode != 0
    assert "'0002'" in proc.stderr and "'p3'" in proc.stderr
