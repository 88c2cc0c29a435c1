import argparse
import json
import os

import numpy as np
import pytest

from kr import cli


def test_get_device_parses_the_flag_strings():
    import chainer
    from kr.devices import get_device
    assert get_device('-1') == get_device(-1) == get_device(None) == chainer.get_device('@numpy')
    try:
        import cupy  # NOQA
        has_cupy = True
    except ImportError:
        has_cupy = False
    if not has_cupy:
        import pytest
        with pytest.raises(ValueError, match="device '0' needs CuPy.*--device -1"):
            get_device('0')


def test_data_args_default_and_env(monkeypatch):
    monkeypatch.delenv('KR_DATA_DIR', raising=False)
    args = argparse.ArgumentParser(parents=[cli.data_args()]).parse_args([])
    assert args.data_dir == os.path.join('data', 'kuzushiji-recognition') and args.split_dir is None
    monkeypatch.setenv('KR_DATA_DIR', '/x/y')
    assert argparse.ArgumentParser(parents=[cli.data_args()]).parse_args([]).data_dir == '/x/y'


def test_gpu_is_an_alias_of_device():
    p = argparse.ArgumentParser(parents=[cli.device_args()])
    assert p.parse_args([]).device == '-1'
    assert p.parse_args(['--gpu', '0']).device == '0'
    assert p.parse_args(['--device', '@cupy:0']).device == '@cupy:0'


def test_derived_dirs():
    assert cli.default_split_dir('data/kuzushiji-recognition/') == os.path.join('data', 'kuzushiji-recognition-gsplit')
    assert cli.default_crop_dir('d/x') == os.path.join('d', 'x-crops')


def test_setup_run_seeds_and_writes_nothing(tmp_path):
    args = argparse.Namespace(out=str(tmp_path / 'run' / 'a'), seed=3, lr=0.1)
    record = cli.setup_run(args)
    assert not os.path.exists(str(tmp_path / 'run'))  # the library writes it once inputs check
    assert record['lr'] == 0.1 and record['seed'] == 3
    assert set(record['versions']) >= {'python', 'numpy', 'chainer', 'cupy', 'kr'}
    first = np.random.rand()
    cli.setup_run(args)
    assert np.random.rand() == first


def test_start_run_writes_args_json_and_guards_finished_runs(tmp_path):
    import pytest
    from kr.runs import start_run
    out = str(tmp_path / 'run' / 'a')
    start_run(out, {'lr': 0.1})
    assert json.load(open(os.path.join(out, 'args.json'))) == {'lr': 0.1}
    open(os.path.join(out, 'model_final.npz'), 'wb').close()
    with pytest.raises(ValueError, match='already holds a finished run .*--resume'):
        start_run(out, {'lr': 0.2}, finished_ok=False)
    assert json.load(open(os.path.join(out, 'args.json'))) == {'lr': 0.1}  # unchanged
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ValueError, match='is a file, not a folder'):
        start_run(str(tmp_path / 'file'), {})


def test_max_image_pixels_flag(monkeypatch):
    import kr.datasets.image as image
    monkeypatch.setattr(image, 'MAX_IMAGE_PIXELS', image.MAX_IMAGE_PIXELS)
    args = argparse.ArgumentParser(parents=[cli.data_args()]).parse_args(
        ['--max-image-pixels', '500000000'])
    cli.setup_run(args)
    assert image.MAX_IMAGE_PIXELS == 500000000


def test_progress_logs_without_terminal(caplog):
    import logging
    from kr.progress import progress
    caplog.set_level(logging.INFO, logger='kr.progress')
    assert list(progress(range(10), desc='pages', log_every=5)) == list(range(10))
    assert [r.getMessage().split(' (')[0] for r in caplog.records] == ['pages 5/10', 'pages 10/10']


def _training_function(data_dir: str, out: str, width: float = 1.0, crop_size: int = 416,
                       full_data: bool = False, optimizer: str = 'nesterov',
                       iterations: int = None, comm=None, run_record: dict = None):
    """Train something.

    Args:
        data_dir: Data.
        out: Output folder.
        width: Channel multiplier of
            the network (100% = the original).
        crop_size: Crop side.
        full_data: Train on everything.
        optimizer: Optimizer.
        iterations: Length.
        comm: A communicator.
        run_record: The record.

    Returns:
        Nothing useful.
    """


def test_docstring_args_joins_continued_lines():
    docs = cli.docstring_args(_training_function)
    assert docs['width'] == 'Channel multiplier of the network (100% = the original).'
    assert docs['run_record'] == 'The record.'
    assert 'Returns' not in ' '.join(docs) and len(docs) == 9


def _settings_parser(preset):
    p = argparse.ArgumentParser()
    p.add_argument('--optimizer', help='optimizer')
    p.add_argument('--out', default='x', help='output folder (default: %(default)s)')
    presets = {'full': {}, 'small': {'width': 0.25, 'optimizer': 'adam', 'iterations': 10}}
    cli.add_settings_args(p, _training_function, presets, preset, 'thing settings')
    return p


def test_add_settings_args_types_help_and_presets():
    p = _settings_parser('small')
    help_text = ' '.join(p.format_help().split())
    assert ('--width WIDTH Channel multiplier of the network (100% = the original). '
            '(default: 1.0; preset small: 0.25)') in help_text
    assert '--crop-size CROP_SIZE Crop side. (default: 416)' in help_text
    # a flag the script wrote itself keeps its help and gains the preset's value
    assert 'optimizer (default: nesterov; preset small: adam)' in help_text
    assert 'output folder (default: x)' in help_text and '--comm' not in help_text
    assert '--run-record' not in help_text and '--data-dir' not in help_text
    args = p.parse_args(['--crop-size', '64', '--full-data'])
    assert (args.crop_size, args.full_data, args.width, args.iterations) == (64, True, None,
                                                                            None)
    assert p.parse_args([]).full_data is None
    assert p.parse_args(['--no-full-data']).full_data is False
    settings = cli.preset_settings(_training_function, {'full': {}, 'small': {'width': 0.25}},
                                   argparse.Namespace(preset='small', **vars(args)))
    assert (settings['width'], settings['crop_size'], settings['full_data']) == (0.25, 64, True)


def test_add_settings_args_refuses_an_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'big' .*choose one of full, small"):
        _settings_parser('big')


def test_recognizer_flags_first_pass_side_and_int8():
    p = argparse.ArgumentParser(parents=[cli.recognizer_args('submission', 0.5),
                                         cli.device_args()])
    args = p.parse_args(['d.npz', 'c.npz', '--backend', 'onnxruntime', '--int8',
                         '--first-pass-side', '640'])
    settings = cli.recognizer_settings(args)
    assert settings['first_min_side'] == 640 and settings['int8'] is True
    settings = cli.recognizer_settings(p.parse_args(['d.npz', 'c.npz']))
    assert settings['first_min_side'] is None and settings['int8'] is False
    for bad in ('0', '-3', 'big'):
        with pytest.raises(SystemExit):
            p.parse_args(['d.npz', 'c.npz', '--first-pass-side', bad])
    with pytest.raises(argparse.ArgumentTypeError, match="positive number of pixels.*'big'"):
        cli.first_pass_side('big')


def test_recognizer_flag_nested_overlap():
    p = argparse.ArgumentParser(parents=[cli.recognizer_args('submission', 0.5),
                                         cli.device_args()])
    assert cli.recognizer_settings(p.parse_args(['d.npz', 'c.npz']))['nested_overlap'] == 0.5
    assert cli.recognizer_settings(p.parse_args(['d.npz', 'c.npz']))['classify_tta'] is False
    args = p.parse_args(['d.npz', 'c.npz', '--classify-tta'])
    assert cli.recognizer_settings(args)['classify_tta'] is True
    args = p.parse_args(['d.npz', 'c.npz', '--nested-overlap', '0'])
    assert cli.recognizer_settings(args)['nested_overlap'] == 0.0
    for bad in ('1.5', '-0.1', 'half'):
        with pytest.raises(SystemExit):
            p.parse_args(['d.npz', 'c.npz', '--nested-overlap', bad])
    with pytest.raises(argparse.ArgumentTypeError, match=r"share of a box in \[0, 1\].*'half'"):
        cli.nested_overlap('half')
