"""Order samplers with a virtual epoch size, for Chainer's iterators.

The classifier's "epoch" is a fixed number of samples (20,000 in SPEC section 4), not a pass
over the ~500k training crops. Both samplers here are ``order_sampler`` callables of
:class:`chainer.iterators.SerialIterator` / ``MultiprocessIterator``: the iterator asks for
a new order of ``epoch_size`` dataset indices at the start of every epoch, so
``iterator.epoch`` counts virtual epochs and the dataset itself stays unwrapped. The
iterator stores the current order in its snapshot, so ``--resume`` continues mid-epoch.
"""

import numpy as np
from chainer.iterators import OrderSampler

#: Classes with fewer crops than this are drawn as often as if they had this many (our
#: choice: the SPEC only asks for a minimum count; 50 leaves the 4,212-class real data
#: mostly as it is while lifting the rare tail).
DEFAULT_MIN_COUNT = 50


def _check_epoch_size(epoch_size):
    if int(epoch_size) < 1:
        raise ValueError('epoch_size must be at least 1, got {}'.format(epoch_size))
    return int(epoch_size)


class RandomSampler(OrderSampler):
    """Uniform random order of ``epoch_size`` indices into a dataset of ``n`` items.

    Each epoch concatenates fresh permutations of ``range(n)`` and keeps the first
    ``epoch_size``: no item repeats within an epoch when ``epoch_size <= n``, and every item
    appears ``epoch_size // n`` or one more times otherwise.

    Args:
        n: Dataset length.
        epoch_size: Indices per epoch (default: ``n``).
        random_state: ``numpy.random.RandomState`` (default: NumPy's global one, so
            ``--seed`` fixes it).

    Raises:
        ValueError: ``n`` or ``epoch_size`` below 1.
    """

    def __init__(self, n: int, epoch_size: int = None, random_state=None):
        if int(n) < 1:
            raise ValueError('cannot sample from an empty dataset')
        self.n = int(n)
        self.epoch_size = _check_epoch_size(self.n if epoch_size is None else epoch_size)
        self._random = random_state if random_state is not None else np.random.random.__self__

    def __call__(self, current_order=None, current_position=0) -> np.ndarray:
        """``(epoch_size,)`` int64 indices of the next epoch (the arguments are unused)."""
        reps = -(-self.epoch_size // self.n)
        order = np.concatenate([self._random.permutation(self.n) for _ in range(reps)])
        return order[:self.epoch_size]


class BalancedSampler(OrderSampler):
    """Random order that over-samples rare classes up to a minimum count.

    Item ``i`` of class ``c`` (``n_c`` items) is drawn with probability proportional to
    ``max(n_c, min_count) / n_c``: classes with at least ``min_count`` items keep their
    share, rarer classes are drawn as if they had ``min_count`` items. Draws are with
    replacement, ``epoch_size`` per epoch.

    Args:
        labels: ``(N,)`` int class of each dataset item (e.g. ``dataset.labels``).
        epoch_size: Indices per epoch (default: ``N``).
        min_count: The minimum effective count per class.
        random_state: ``numpy.random.RandomState`` (default: NumPy's global one).

    Raises:
        ValueError: Empty or non-1-D labels, negative labels, ``min_count`` or
            ``epoch_size`` below 1.
    """

    def __init__(self, labels, epoch_size: int = None, min_count: int = DEFAULT_MIN_COUNT,
                 random_state=None):
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) == 0:
            raise ValueError('labels must be a non-empty 1-D array, got shape {}'.format(
                labels.shape))
        if labels.min() < 0:
            raise ValueError('labels must be class indices >= 0 (got {}): was the dataset '
                             'built without a unicode mapping?'.format(int(labels.min())))
        if int(min_count) < 1:
            raise ValueError('min_count must be at least 1, got {}'.format(min_count))
        self.epoch_size = _check_epoch_size(len(labels) if epoch_size is None else epoch_size)
        self.min_count = int(min_count)
        counts = np.bincount(labels)
        weights = np.maximum(counts, self.min_count) / np.maximum(counts, 1)
        self.probabilities = weights[labels] / weights[labels].sum()
        self._random = random_state if random_state is not None else np.random.random.__self__

    def __call__(self, current_order=None, current_position=0) -> np.ndarray:
        """``(epoch_size,)`` int64 indices of the next epoch (the arguments are unused)."""
        return self._random.choice(len(self.probabilities), self.epoch_size, replace=True,
                                   p=self.probabilities)


def make_sampler(kind: str, labels, epoch_size: int = None, min_count: int = DEFAULT_MIN_COUNT,
                 random_state=None) -> OrderSampler:
    """``'random'`` -> :class:`RandomSampler`, ``'balanced'`` -> :class:`BalancedSampler`.

    Raises:
        ValueError: Unknown ``kind``.
    """
    if kind == 'random':
        return RandomSampler(len(labels), epoch_size, random_state=random_state)
    if kind == 'balanced':
        return BalancedSampler(labels, epoch_size, min_count=min_count,
                               random_state=random_state)
    raise ValueError('unknown sampler {!r}: choose random or balanced'.format(kind))


#: Names accepted by :func:`make_sampler` (``--sampler`` choices).
SAMPLERS = ('random', 'balanced')


class MixtureSampler(OrderSampler):
    """Random order over a :class:`chainer.datasets.ConcatenatedDataset` with a fixed number
    of draws from each part per epoch.

    The finetuning of SPEC section 5 draws 20,000 trainval crops and 10,000 pseudo-label
    crops an epoch: ``MixtureSampler([n_trainval, n_pseudo], [20000, 10000])``. Each part is
    drawn as by :class:`RandomSampler`, the indices are offset into the concatenation and
    the whole epoch is shuffled.

    Args:
        sizes: Length of each part, in concatenation order.
        epoch_sizes: Draws from each part per epoch (0 skips a part).
        random_state: ``numpy.random.RandomState`` (default: NumPy's global one).

    Raises:
        ValueError: Mismatched lengths, a negative draw count, draws from an empty part, or
            no draws at all.
    """

    def __init__(self, sizes, epoch_sizes, random_state=None):
        sizes, epoch_sizes = [int(s) for s in sizes], [int(e) for e in epoch_sizes]
        if len(sizes) != len(epoch_sizes):
            raise ValueError('{} parts but {} epoch sizes'.format(len(sizes), len(epoch_sizes)))
        for n, e in zip(sizes, epoch_sizes):
            if e < 0 or (e > 0 and n < 1):
                raise ValueError('cannot draw {} items from a part of {}'.format(e, n))
        if sum(epoch_sizes) < 1:
            raise ValueError('an epoch needs at least one draw, got {}'.format(epoch_sizes))
        self._random = random_state if random_state is not None else np.random.random.__self__
        self.offsets = np.cumsum([0] + sizes[:-1])
        self.parts = [(RandomSampler(n, e, self._random), off)
                      for n, e, off in zip(sizes, epoch_sizes, self.offsets) if e > 0]
        self.epoch_size = sum(epoch_sizes)

    def __call__(self, current_order=None, current_position=0) -> np.ndarray:
        """``(sum(epoch_sizes),)`` int64 indices into the concatenation."""
        order = np.concatenate([sampler() + off for sampler, off in self.parts])
        return order[self._random.permutation(len(order))]
