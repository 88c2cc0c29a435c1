import os

import pytest

# kr first, before any test module imports Chainer: kr/_compat.py makes Chainer 7.8.1 import
# on Python 3.12/3.13 and with NumPy 2.
import kr  # noqa: F401,E402


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: end-to-end runs of the scripts (seconds to a minute)')
    config.addinivalue_line('markers', 'gpu: needs CuPy and a CUDA GPU')
    config.addinivalue_line('markers', 'data: needs the real Kaggle data in $KR_DATA_DIR')


def _has_gpu():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason='needs CuPy and a CUDA GPU')
    skip_data = pytest.mark.skip(reason='set KR_DATA_DIR to the real Kaggle data to run')
    has_gpu = None
    for item in items:
        if 'gpu' in item.keywords:
            if has_gpu is None:
                has_gpu = _has_gpu()
            if not has_gpu:
                item.add_marker(skip_gpu)
        if 'data' in item.keywords and not os.environ.get('KR_DATA_DIR'):
            item.add_marker(skip_data)


@pytest.fixture(scope='session')
def tiny_kaggle_dir(tmp_path_factory):
    """A tiny synthetic Kaggle-layout set (12 train pages in several books, 3 test pages),
    split into folds and cut into character crops.

    Returns a dict with ``data_dir``, ``split_dir`` and ``crop_dir``. Read-only for tests:
    copy it before changing anything.
    """
    from kr.datasets import crop_characters
    from kr.datasets import split_train_val
    from kr.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp('tiny_kaggle')
    data_dir = str(root / 'kuzushiji-recognition')
    split_dir = str(root / 'kuzushiji-recognition-gsplit')
    crop_dir = str(root / 'kuzushiji-recognition-crops')
    # IPAexGothic only: the same data on every machine, whatever fonts it has installed.
    make_synthetic_dataset(out=data_dir, train_pages=12, test_pages=3, seed=0, page_height=480,
                           workers=1, brush_fonts=False)
    split_train_val(data_dir, split_dir)
    crop_characters(data_dir, crop_dir, split_dir=split_dir, workers=1)
    return {'data_dir': data_dir, 'split_dir': split_dir, 'crop_dir': crop_dir}
