"""kr.datasets.image.ImageCache: decoded images within a byte budget."""
import numpy as np
import pytest
from PIL import Image

from kr.datasets import image as image_module
from kr.datasets.image import ImageCache


@pytest.fixture
def files(tmp_path):
    """Three PNGs: 10 x 10 (300 bytes decoded), 20 x 10 (600) and 10 x 10 again."""
    paths = []
    rng = np.random.RandomState(0)
    for n, (h, w) in enumerate([(10, 10), (10, 20), (10, 10)]):
        path = str(tmp_path / '{}.png'.format(n))
        Image.fromarray(rng.randint(0, 255, (h, w, 3)).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def decodes(monkeypatch):
    calls = []
    real = image_module.load_image

    def load(path):
        calls.append(path[-5:])
        return real(path)

    monkeypatch.setattr(image_module, 'load_image', load)
    return calls


def test_least_recently_used_image_leaves_first(files, decodes):
    cache = ImageCache(1000, n_images=3)      # 3 x 300 x 1.1 = 990 fits: cache on
    for k in (0, 1, 0, 2):                    # 0 + 1 = 900 bytes; 2 pushes out 1, not 0
        cache.load(k, files[k])
    assert decodes == ['0.png', '1.png', '2.png']
    assert len(cache) == 2 and cache.nbytes == 600
    cache.load(0, files[0])
    cache.load(1, files[1])                   # decoded again; 2 (older than 0) leaves
    assert decodes[3:] == ['1.png'] and cache.nbytes == 900
    cache.load(0, files[0])
    assert decodes[4:] == []
    got = cache.load(1, files[1])
    np.testing.assert_array_equal(got, np.asarray(Image.open(files[1]).convert('RGB')))
    assert got.shape == (10, 20, 3) and not got.flags.writeable


def test_no_budget_or_no_room_keeps_nothing(files, decodes):
    plain = ImageCache(0, n_images=3)
    assert isinstance(plain.load(0, files[0]), Image.Image)
    small = ImageCache(900, n_images=3)       # 990 expected: over the budget
    for k in (0, 0, 1):
        assert isinstance(small.load(k, files[k]), np.ndarray)
    assert len(small) == 0 and small.nbytes == 0 and len(decodes) == 4
    with pytest.raises(ValueError, match='cache_bytes must be >= 0, got -5'):
        ImageCache(-5, 3)
