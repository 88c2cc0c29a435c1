import glob
import json
import os
import subprocess
import sys

import pytest

from kr.datasets import read_labels_csv

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(glob.glob(os.path.join(REPO, 'scripts', '[0-9][0-9]_*.py')))


def run(script, *args, cwd=None, check=True):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', script)] + list(args),
                          cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError('{} failed ({}):\n{}\n{}'.format(script, proc.returncode,
                                                               proc.stdout, proc.stderr))
    return proc


@pytest.mark.parametrize('script', [os.path.basename(s) for s in SCRIPTS])
def test_help(script):
    proc = run(script, '--help')
    assert 'usage:' in proc.stdout


def test_missing_data_folder_names_the_script_that_makes_it(tmp_path):
    proc = run('01_split_train_val.py', '--data-dir', str(tmp_path / 'nothing'), check=False)
    assert proc.returncode != 0
    assert 'nothing not found' in proc.stderr and '00_make_synthetic_dataset.py' in proc.stderr
    proc = run('02_crop_characters.py', '--data-dir', str(tmp_path / 'nothing'), check=False)
    assert proc.returncode != 0 and '00_make_synthetic_dataset.py' in proc.stderr


@pytest.mark.slow
def test_foundation_end_to_end(tmp_path):
    data = str(tmp_path / 'data' / 'synth')
    run('00_make_synthetic_dataset.py', '--out', data, '--train-pages', '12', '--test-pages', '3',
        '--seed', '1', '--page-height', '480', '--workers', '2')
    for name in ('train.csv', 'unicode_translation.csv', 'sample_submission.csv', 'test_labels.csv'):
        assert os.path.isfile(os.path.join(data, name))

    run('01_split_train_val.py', '--data-dir', data)
    split_dir = data + '-gsplit'
    assert sorted(os.listdir(split_dir)) == sorted(
        ['args.json'] + ['{}-{}.csv'.format(s, k) for s in ('train', 'val') for k in range(4)])

    run('02_crop_characters.py', '--data-dir', data, '--workers', '2')
    crop_dir = data + '-crops'
    records = json.load(open(os.path.join(crop_dir, 'trainval.json'), encoding='utf-8'))
    n_boxes = sum(len(r[1].split()) // 5 for r in read_labels_csv(os.path.join(data, 'train.csv')))
    assert len(records) == n_boxes > 0
    assert all(os.path.isfile(os.path.join(crop_dir, r['image_path'])) for r in records)
    assert json.load(open(os.path.join(crop_dir, 'args.json')))['summary']['crops'] == n_boxes
    proc = run('02_crop_characters.py', '--data-dir', data, check=False)
    assert proc.returncode != 0 and '--overwrite' in proc.stderr

    image_id = read_labels_csv(os.path.join(data, 'train.csv'))[0][0]
    run('09_visualize.py', '--data-dir', data, '--image-id', image_id,
        '--out', str(tmp_path / 'pic' / 'page.png'))
    assert os.path.getsize(str(tmp_path / 'pic' / 'page.png')) > 1000

    # A submission of the true centres scores exactly 1 against the synthetic test labels.
    solution = os.path.join(data, 'test_labels.csv')
    rows = []
    for image_id, labels, _ in read_labels_csv(solution):
        t = labels.split()
        rows.append('{},{}'.format(image_id, ' '.join(
            '{} {} {}'.format(t[i], float(t[i + 1]) + float(t[i + 3]) / 2,
                              float(t[i + 2]) + float(t[i + 4]) / 2) for i in range(0, len(t), 5))))
    submission = tmp_path / 'submission.csv'
    submission.write_text('image_id,labels\n' + '\n'.join(rows) + '\n')
    result = json.loads(run('08_evaluate.py', str(submission), solution).stdout.strip().splitlines()[-1])
    assert result['f1'] == 1.0 and result['fp'] == 0 and result['fn'] == 0 and result['tp'] > 0


@pytest.mark.slow
def test_whole_pipeline_end_to_end(tmp_path):
    """00 -> 09 with a few iterations each: files and formats, not accuracy."""
    data, work = str(tmp_path / 'd'), str(tmp_path)
    run('00_make_synthetic_dataset.py', '--out', data, '--train-pages', '10', '--test-pages', '2',
        '--seed', '2', '--page-height', '480', '--workers', '1')
    run('01_split_train_val.py', '--data-dir', data)
    run('02_crop_characters.py', '--data-dir', data, '--workers', '1')
    common = ['--data-dir', data, '--preset', 'demo', '--iterations', '2', '--seed', '0']
    run('03_train_detector.py', *common, '--batchsize', '2', '--out', work + '/det')
    run('04_train_classifier.py', *common, '--out', work + '/clf')
    det, clf = work + '/det/model_final.npz', work + '/clf/model_final.npz'
    # a low threshold so that even a barely trained detector sends boxes downstream
    run('05_make_pseudo_labels.py', det, clf, '--data-dir', data, '--out', work + '/pseudo',
        '--class-threshold', '0', '--detection-threshold', '0.2', '--no-tta')
    pseudo = json.load(open(work + '/pseudo/pseudo_labels.json', encoding='utf-8'))
    assert isinstance(pseudo, list)
    run('06_finetune_classifier.py', clf, '--pseudo-labels-dir', work + '/pseudo', *common,
        '--out', work + '/ft')
    # The demo preset's dropout and crop jitter, recorded by 04 and carried on by 06.
    for name in ('clf', 'ft'):
        args = json.load(open('{}/{}/args.json'.format(work, name), encoding='utf-8'))
        assert (args['dropout'], args['jitter']) == (0.0, 'wide'), name
    proc = run('07_make_submission.py', det, work + '/ft/model_final.npz', '--data-dir', data,
               '--out', work + '/sub', '--detection-threshold', '0.2')
    sub = work + '/sub/submission.csv'
    rows = read_labels_csv(sub)
    assert [r[0] for r in rows] == [r[0] for r in read_labels_csv(data + '/sample_submission.csv')]
    for _, labels, _ in rows:
        assert len(labels.split()) % 3 == 0
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(metrics) == {'f1', 'precision', 'recall', 'tp', 'fp', 'fn'}
    info = json.load(open(work + '/sub/submission_info.json'))
    assert info['detection_threshold'] == 0.2 and info['versions']['chainer'] == '7.8.1'
    # the cached detections let another classifier be scored without the detector
    run('07_make_submission.py', det, clf, '--data-dir', data, '--out', work + '/sub2',
        '--detections', work + '/sub/detection.csv')
    scored = json.loads(run('08_evaluate.py', sub, data + '/test_labels.csv').stdout.splitlines()[-1])
    assert scored == metrics
    run('09_visualize.py', '--data-dir', data, '--image-id', rows[0][0], '--submission', sub,
        '--out', work + '/pic/scored.png')
    assert os.path.getsize(work + '/pic/scored.png') > 1000
