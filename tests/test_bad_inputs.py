"""Bad input gets a clear error that names the file or argument, and loses nothing.

One test per case found by trying kr as a new user would (issue "every bad input a clear
error and nothing lost"); the script cases run the scripts as a user does and check the
exit status, the message, that no traceback is printed and that earlier files are unchanged.
"""
import json
import logging
import os
import shutil
import subprocess
import sys

import chainer
import numpy as np
import pytest
from PIL import Image

from kr.classifier import build_classifier
from kr.classifier.registry import save_class_table
from kr.datasets import KuzushijiUnicodeMapping
from kr.datasets import load_image
from kr.detector import build_detector

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script(name, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, 'scripts', name)]
                          + [str(a) for a in args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def assert_user_error(proc, *fragments):
    assert proc.returncode != 0, proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: '), proc.stderr
    for fragment in fragments:
        assert fragment in last, last


def _snapshot(folder):
    return {name: open(os.path.join(folder, name), 'rb').read()
            for name in sorted(os.listdir(folder))}


@pytest.fixture(scope='module')
def tiny_models(tmp_path_factory, tiny_kaggle_dir):
    """Untrained detector and classifier run folders (weights, args.json, class table)."""
    root = tmp_path_factory.mktemp('tiny_models')
    mapping = KuzushijiUnicodeMapping(tiny_kaggle_dir['data_dir'])
    det, clf = root / 'det', root / 'clf'
    det.mkdir()
    clf.mkdir()
    chainer.serializers.save_npz(str(det / 'model_final.npz'), build_detector(width=0.125))
    (det / 'args.json').write_text(json.dumps({'detector': 'centernet', 'width': 0.125}))
    chainer.serializers.save_npz(str(clf / 'model_final.npz'),
                                 build_classifier('resnet18', len(mapping), width=0.25,
                                                  input_size=24))
    (clf / 'args.json').write_text(json.dumps(
        {'model': 'resnet18', 'n_classes': len(mapping), 'width': 0.25, 'input_size': 24}))
    save_class_table(mapping, str(clf))
    return {'detector': str(det / 'model_final.npz'), 'classifier': str(clf / 'model_final.npz')}


# 1. A failed start changes nothing -------------------------------------------------------

def test_a_typo_in_data_dir_keeps_a_finished_run(tiny_models, tmp_path):
    run = tmp_path / 'run'
    shutil.copytree(os.path.dirname(tiny_models['detector']), str(run))
    before = _snapshot(str(run))
    proc = script('03_train_detector.py', '--data-dir', tmp_path / 'typo', '--preset', 'demo',
                  '--out', run)
    assert_user_error(proc, 'typo')
    assert _snapshot(str(run)) == before


@pytest.mark.parametrize('name', ['01_split_train_val.py', '03_train_detector.py'])
def test_a_failed_start_leaves_no_folder(name, tmp_path):
    proc = script(name, '--data-dir', tmp_path / 'typo', '--split-dir', tmp_path / 'split',
                  *(['--out', tmp_path / 'new'] if name.startswith('03') else []))
    assert_user_error(proc, 'typo')
    assert not os.path.exists(str(tmp_path / 'new'))
    assert not os.path.exists(str(tmp_path / 'split'))


def test_a_failed_submission_leaves_no_folder(tiny_models, tmp_path):
    proc = script('07_make_submission.py', tiny_models['detector'], tiny_models['classifier'],
                  '--data-dir', tmp_path / 'typo', '--out', tmp_path / 'sub')
    assert_user_error(proc, 'typo')
    assert not os.path.exists(str(tmp_path / 'sub'))


def test_an_existing_file_as_out(tiny_kaggle_dir, tiny_models, tmp_path):
    target = tmp_path / 'out.txt'
    target.write_text('keep me')
    proc = script('07_make_submission.py', tiny_models['detector'], tiny_models['classifier'],
                  '--data-dir', tiny_kaggle_dir['data_dir'], '--out', target)
    assert_user_error(proc, 'is a file, not a folder')
    assert target.read_text() == 'keep me'


# 2. model_final.npz is written whole or not at all ----------------------------------------

def test_model_final_is_written_whole(tmp_path, monkeypatch):
    from kr.training import assembler

    def interrupted(path, obj):
        open(path, 'wb').write(b'PK\x03\x04 half')
        raise KeyboardInterrupt

    monkeypatch.setattr(chainer.serializers, 'save_npz', interrupted)
    with pytest.raises(KeyboardInterrupt):
        assembler._save_model(chainer.links.Linear(2, 2), str(tmp_path / 'model_final.npz'))
    assert os.listdir(str(tmp_path)) == []


# 3. Load errors name the file -------------------------------------------------------------

def test_swapped_models_are_named(tiny_models):
    from kr.inference import load_recognizer
    with pytest.raises(ValueError, match='clf/model_final.npz as centernet detector weights'):
        load_recognizer(tiny_models['classifier'], tiny_models['classifier'])
    with pytest.raises(ValueError, match='det/args.json lacks model, n_classes'):
        load_recognizer(tiny_models['detector'], tiny_models['detector'])


# 4-5. Odd and large images -----------------------------------------------------------------

def test_16_bit_greyscale_keeps_its_grey_levels(tmp_path):
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(str(tmp_path / 'g16.png'))
    assert Image.open(str(tmp_path / 'g16.png')).mode == 'I;16'
    rgb = np.asarray(load_image(str(tmp_path / 'g16.png')))
    assert rgb.shape == (1, 4, 3) and rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()
    f = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(f, 'F').save(str(tmp_path / 'f.tiff'))
    assert np.asarray(load_image(str(tmp_path / 'f.tiff')))[0, :, 1].tolist() == [0, 128, 255]


def test_pages_above_pils_bomb_guard_open_and_our_limit_names_the_flag(tmp_path, monkeypatch):
    import kr.datasets.image as image
    Image.new('L', (64, 48), 200).save(str(tmp_path / 'page.png'))
    # PIL refuses (raises) above twice its MAX_IMAGE_PIXELS: a real 600-dpi scan is that big
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
    assert np.asarray(load_image(str(tmp_path / 'page.png')))[0, 0].tolist() == [200] * 3
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    monkeypatch.setattr(image, 'MAX_IMAGE_PIXELS', 3000)
    with pytest.raises(ValueError, match=r'page.png: 64 x 48 pixels is more than the limit of '
                                         r'3,000; pass --max-image-pixels 3072'):
        load_image(str(tmp_path / 'page.png'))


# 6. A UTF-8 byte-order mark ----------------------------------------------------------------

def test_a_byte_order_mark_is_accepted(tmp_path):
    from kr.datasets import read_labels_csv
    (tmp_path / 'train.csv').write_bytes('\ufeffimage_id,labels\np1,U+3042 1 2 3 4\n'
                                         .encode('utf-8'))
    assert read_labels_csv(str(tmp_path / 'train.csv')) == [('p1', 'U+3042 1 2 3 4', 2)]
    (tmp_path / 'unicode_translation.csv').write_bytes('\ufeffUnicode,char\nU+3042,あ\n'
                                                       .encode('utf-8'))
    assert KuzushijiUnicodeMapping(str(tmp_path)).unicodes == ['U+3042']


# 8-9. A GPU or the onnx extra that is not there --------------------------------------------

def test_a_gpu_without_cupy(tiny_kaggle_dir, tiny_models, tmp_path):
    try:
        import cupy  # NOQA
        pytest.skip('CuPy is installed')
    except ImportError:
        pass
    proc = script('07_make_submission.py', tiny_models['detector'], tiny_models['classifier'],
                  '--data-dir', tiny_kaggle_dir['data_dir'], '--out', tmp_path / 'sub',
                  '--device', '0')
    assert_user_error(proc, "device '0' needs CuPy", '--device -1')
    assert not os.path.exists(str(tmp_path / 'sub'))


def test_onnxruntime_missing(tiny_models, monkeypatch):
    from kr.inference import load_recognizer
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match=r'--backend onnxruntime needs the onnx extra.*'
                                          r'pip install -e "\.\[onnx\]"'):
        load_recognizer(tiny_models['detector'], tiny_models['classifier'],
                        backend='onnxruntime')


def test_the_onnx_backend_leaves_no_temporary_folder(tiny_models, tmp_path, monkeypatch):
    pytest.importorskip('onnxruntime')
    import tempfile
    from kr.inference import load_recognizer
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    rec = load_recognizer(tiny_models['detector'], tiny_models['classifier'],
                          backend='onnxruntime')
    assert os.listdir(str(tmp_path)) == []
    assert rec.recognize(np.full((64, 64, 3), 255, np.uint8)) == []  # sessions still work


# 10. Script 08 warns of predictions that can never match ----------------------------------

def test_08_warns_of_tokens_the_scorer_takes_as_written(tmp_path):
    (tmp_path / 'sol.csv').write_text('image_id,labels\np1,U+306E 0 0 10 10\n')
    (tmp_path / 'sub.csv').write_text('image_id,labels\np1,u+306e 5 5 U+306E inf 5\n')
    proc = script('08_evaluate.py', tmp_path / 'sub.csv', tmp_path / 'sol.csv')
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result['tp'], result['fp'], result['fn']) == (0, 2, 1)  # the public scorer's
    assert "2 prediction(s) can never match" in proc.stderr
    assert "page 'p1': 'u+306e' is not a code like U+304A" in proc.stderr
    assert "page 'p1': U+306E at (inf, 5.0)" in proc.stderr


# 11. The smaller ones -----------------------------------------------------------------------

def test_a_box_outside_the_page_is_named(caplog, tmp_path):
    from kr.datasets.char_crop import _crop_one_page
    Image.new('RGB', (40, 30), (200, 190, 170)).save(str(tmp_path / 'p.jpg'))
    bboxes = np.array([[2, 2, 10, 10], [50, 5, 60, 15]], np.float32)
    os.makedirs(str(tmp_path / 'crops'))
    with caplog.at_level(logging.WARNING, logger='kr.datasets.char_crop'):
        _crop_one_page((str(tmp_path / 'p.jpg'), 'p', bboxes, ['U+3042', 'U+3044'],
                        str(tmp_path / 'crops')))
    assert "p: 1 box(es) lie outside the 40 x 30 page, e.g. U+3044 at [50.0, 5.0, 60.0, 15.0]" \
        in caplog.text


def test_the_nan_message_says_what_is_kept(tmp_path):
    from kr.training.extensions import _what_is_kept
    assert _what_is_kept(str(tmp_path)).startswith('no snapshot was written yet')
    for n in (100, 200):
        (tmp_path / 'snapshot_iter_{}'.format(n)).write_bytes(b'')
    message = _what_is_kept(str(tmp_path))
    assert 'snapshot_iter_200 (iteration 200)' in message and 'earlier one' in message


def test_files_get_the_users_umask(tmp_path):
    from kr import fileio
    old = os.umask(0o022)
    try:
        fileio.write_json(str(tmp_path / 'a.json'), {})
        with fileio.atomic_directory(str(tmp_path / 'folder')) as d:
            open(os.path.join(d, 'x'), 'w').close()
    finally:
        os.umask(old)
    assert os.stat(str(tmp_path / 'a.json')).st_mode & 0o777 == 0o644
    assert os.stat(str(tmp_path / 'folder')).st_mode & 0o777 == 0o755


def test_an_interrupted_folder_build_is_cleaned_up(tmp_path):
    from kr import fileio
    (tmp_path / '.crops.abc123.tmp').mkdir()
    (tmp_path / '.crops.abc123.tmp' / 'half.png').write_bytes(b'')
    (tmp_path / '.other.x.tmp').mkdir()
    with fileio.atomic_directory(str(tmp_path / 'crops')):
        pass
    assert sorted(os.listdir(str(tmp_path))) == ['.other.x.tmp', 'crops']


def test_training_errors_print_no_chainer_traceback(tmp_path, capsys):
    from kr.training import OptimizerSpec, Schedule, train

    class Broken(chainer.links.Linear):
        def forward(self, x, t):
            raise ValueError('a broken batch')

    data = chainer.datasets.TupleDataset(np.zeros((4, 2), np.float32), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match='a broken batch'):
        train(Broken(2, 2), data, str(tmp_path), OptimizerSpec('adam', 1e-3),
              Schedule.of(iterations=1), batchsize=2)
    assert 'Exception in main training loop' not in capsys.readouterr().err
