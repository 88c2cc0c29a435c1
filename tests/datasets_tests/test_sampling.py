import chainer
import numpy as np
import pytest

from kr.datasets.sampling import BalancedSampler
from kr.datasets.sampling import make_sampler
from kr.datasets.sampling import RandomSampler

#: A skewed label set: class 0 x 1000, class 1 x 100, class 2 x 10, class 3 x 1, class 4 absent.
SKEWED = np.repeat(np.arange(4), [1000, 100, 10, 1]).astype(np.int32)


def test_random_sampler_without_repeats_within_an_epoch():
    sampler = RandomSampler(50, epoch_size=20, random_state=np.random.RandomState(0))
    order = sampler(np.arange(50), 0)
    assert order.shape == (20,) and len(set(order.tolist())) == 20
    assert order.min() >= 0 and order.max() < 50
    assert not np.array_equal(order, sampler(order, 20))


def test_random_sampler_epoch_larger_than_dataset():
    order = RandomSampler(7, epoch_size=30, random_state=np.random.RandomState(0))()
    counts = np.bincount(order, minlength=7)
    assert counts.sum() == 30 and set(counts.tolist()) <= {4, 5}


def test_random_sampler_frequencies_follow_the_data():
    sampler = RandomSampler(len(SKEWED), epoch_size=100000, random_state=np.random.RandomState(0))
    freq = np.bincount(SKEWED[sampler()], minlength=4) / 100000
    np.testing.assert_allclose(freq, np.bincount(SKEWED) / len(SKEWED), atol=0.005)


def test_balanced_sampler_frequencies():
    sampler = BalancedSampler(SKEWED, epoch_size=200000, min_count=100,
                              random_state=np.random.RandomState(0))
    # Effective counts: 1000, 100, 100 (10 raised to 100), 100 (1 raised to 100).
    expected = np.array([1000, 100, 100, 100]) / 1300
    np.testing.assert_allclose(np.bincount(SKEWED, weights=sampler.probabilities), expected)
    freq = np.bincount(SKEWED[sampler()], minlength=4) / 200000
    np.testing.assert_allclose(freq, expected, atol=0.004)
    # Within a class every item is equally likely.
    rare = sampler.probabilities[SKEWED == 2]
    np.testing.assert_allclose(rare, rare[0])


def test_balanced_sampler_min_count_one_is_the_data_distribution():
    sampler = BalancedSampler(SKEWED, min_count=1)
    np.testing.assert_allclose(sampler.probabilities, 1 / len(SKEWED))
    assert len(sampler()) == len(SKEWED)


def test_iterator_epoch_is_the_virtual_epoch():
    dataset = list(range(10))
    sampler = RandomSampler(10, epoch_size=4, random_state=np.random.RandomState(0))
    it = chainer.iterators.SerialIterator(dataset, 2, order_sampler=sampler)
    seen = [next(it) for _ in range(4)]
    assert it.epoch == 2 and it.is_new_epoch
    assert all(len(batch) == 2 for batch in seen)
    assert len(set(sum(seen[:2], []))) == 4


def test_iterator_resumes_mid_epoch(tmp_path):
    sampler = make_sampler('balanced', SKEWED, epoch_size=8, random_state=np.random.RandomState(0))
    it = chainer.iterators.SerialIterator(list(range(len(SKEWED))), 3, order_sampler=sampler)
    next(it)
    chainer.serializers.save_npz(str(tmp_path / 'it.npz'), it)
    expected = next(it)
    fresh = chainer.iterators.SerialIterator(list(range(len(SKEWED))), 3,
                                             order_sampler=make_sampler('balanced', SKEWED, 8))
    chainer.serializers.load_npz(str(tmp_path / 'it.npz'), fresh)
    assert next(fresh) == expected


@pytest.mark.parametrize('call, match', [
    (lambda: RandomSampler(0), 'empty'),
    (lambda: RandomSampler(5, epoch_size=0), 'epoch_size'),
    (lambda: BalancedSampler([], 5), 'non-empty'),
    (lambda: BalancedSampler([0, -1, 2]), 'mapping'),
    (lambda: BalancedSampler([0, 1], min_count=0), 'min_count'),
    (lambda: make_sampler('weighted', SKEWED), 'random or balanced'),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mixture_sampler_draws_per_part():
    from kr.datasets.sampling import MixtureSampler
    sampler = MixtureSampler([5, 100], [20, 10], random_state=np.random.RandomState(0))
    order = sampler()
    assert order.shape == (30,) and sampler.epoch_size == 30
    first, second = order[order < 5], order[order >= 5]
    assert len(first) == 20 and len(second) == 10
    assert np.bincount(first, minlength=5).tolist() == [4] * 5   # 4 full passes over part 0
    assert len(set(second.tolist())) == 10 and second.max() < 105
    assert not (np.diff(order) >= 0).all()  # parts are shuffled together
    assert MixtureSampler([5, 0], [3, 0])().max() < 5


@pytest.mark.parametrize('sizes,epochs,message', [
    ([5], [1, 2], '1 parts but 2 epoch sizes'),
    ([5, 0], [1, 2], 'cannot draw 2 items from a part of 0'),
    ([5], [0], 'an epoch needs at least one draw'),
])
def test_mixture_sampler_errors(sizes, epochs, message):
    from kr.datasets.sampling import MixtureSampler
    with pytest.raises(ValueError, match=message):
        MixtureSampler(sizes, epochs)
