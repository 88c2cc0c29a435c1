"""Data-parallel training with ChainerMN (shipped inside Chainer 7) over MPI.

One process per rank, launched by ``mpiexec -n N``; on GPU nodes one GPU per rank. The pieces
that :func:`kr.training.train` and the families use:

* :func:`create_communicator`: ``naive`` (CPU, tests), ``flat`` or ``pure_nccl`` (GPUs);
* :func:`rank_device`: ``--device 0`` becomes the rank's own GPU (its ``intra_rank``);
* :func:`shard` / :func:`shard_indices`: every rank builds the same dataset from the files
  (nothing is pickled between ranks) and keeps its share of the indices: training shards
  are equal in size (a few indices repeated, as ``chainermn.scatter_dataset`` pads),
  validation shards are contiguous blocks without repeats, so their results combine exactly;
* :func:`rank_seed`: a different random stream per rank for sampling and augmentation;
* :func:`scaled_lr`: the learning-rate rule for the global batch (:data:`LR_RULES`);
* :func:`combine_by_count`: validation means averaged by the ranks' sample counts.

The first update of a multi-node optimizer only broadcasts rank 0's parameters, so every rank
starts from the same weights (SPEC section 13).
"""

import math

import numpy as np

#: ``--communicator`` choices.
COMMUNICATORS = ('naive', 'flat', 'pure_nccl')
#: ``--lr-rule`` choices: the lr of a run on N ranks of batch b, against the lr given for one
#: process of batch b. ``linear`` (Goyal et al., arXiv:1706.02677: the global batch is N b,
#: so the lr is N times) suits SGD with momentum, the original's NesterovAG; ``sqrt`` is
#: the gentler rule often used with Adam; ``none`` keeps the lr given.
LR_RULES = ('linear', 'sqrt', 'none')
#: Offset between the seeds of consecutive ranks (a prime, so streams do not line up).
RANK_SEED_STRIDE = 1000003


def create_communicator(name: str):
    """``chainermn.create_communicator(name)``, with errors that say what to install.

    Raises:
        ValueError: An unknown name.
        ImportError: mpi4py (the ``dist`` extra) or MPI is missing.
    """
    if name not in COMMUNICATORS:
        raise ValueError('unknown communicator {!r}: choose one of {}'.format(
            name, ', '.join(COMMUNICATORS)))
    try:
        import mpi4py.MPI  # NOQA: fails here without MPI
        import chainermn
    except ImportError as e:
        raise ImportError('--communicator needs MPI and mpi4py ({}): install the dist extra '
                          '(make install EXTRAS=test,onnx,dist) and run under mpiexec'.format(
                              e)) from None
    return chainermn.create_communicator(name)


def rank_device(device, comm):
    """The device of this rank: a GPU request becomes the rank's own GPU
    (``@cupy:<intra_rank>``), the CPU stays the CPU."""
    if comm is None or device is None:
        return device
    spec = str(device)
    if spec.lstrip('-').isdigit():
        return spec if int(spec) < 0 else '@cupy:{}'.format(comm.intra_rank)
    if spec.startswith('@cupy'):
        return '@cupy:{}'.format(comm.intra_rank)
    return device


def rank_seed(seed, comm):
    """``seed`` for rank 0 (so one rank reproduces a one-process run), a different one on
    every other rank; ``None`` stays ``None``."""
    if seed is None or comm is None:
        return seed
    return int(seed) + RANK_SEED_STRIDE * int(comm.rank)


def scaled_lr(lr: float, rule: str, size: int) -> float:
    """The lr for ``size`` ranks under ``rule`` (see :data:`LR_RULES`)."""
    if rule not in LR_RULES:
        raise ValueError('unknown lr rule {!r}: choose one of {}'.format(rule, ', '.join(LR_RULES)))
    return lr * {'linear': size, 'sqrt': math.sqrt(size), 'none': 1}[rule]


def shard_indices(n: int, rank: int, size: int, train: bool = True, seed: int = 0) -> np.ndarray:
    """The indices of ``n`` examples that rank ``rank`` of ``size`` keeps.

    Training (``train``): a permutation by ``seed``, the same on every rank, cut into ``size``
    equal shards of ``ceil(n / size)`` (the last ones padded with the first indices, so
    every rank does the same number of iterations per epoch). Validation: contiguous blocks
    in order, without repeats (their sizes differ by at most one).
    """
    if train:
        order = np.random.RandomState(seed).permutation(n)
        per = -(-n // size)
        order = np.concatenate([order, order[:per * size - n]]) if n else order
        return order[rank * per:(rank + 1) * per].astype(np.int64)
    bounds = [n * r // size for r in range(size + 1)]
    return np.arange(bounds[rank], bounds[rank + 1], dtype=np.int64)


class IndexedSubset:
    """The examples ``indices`` of ``dataset``, in that order (indices may repeat)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.dataset[int(j)] for j in self.indices[i]]
        return self.dataset[int(self.indices[i])]


def shard(dataset, comm, train: bool = True, seed: int = 0):
    """This rank's share of ``dataset`` (see :func:`shard_indices`); the dataset itself
    without a communicator."""
    if comm is None or dataset is None:
        return dataset
    return IndexedSubset(dataset, shard_indices(len(dataset), comm.rank, comm.size, train, seed))


def combine_by_count(evaluator, comm, count: int):
    """Make a trainer Evaluator report, on every rank, the means over all ranks' samples:
    each rank's means weighted by its ``count`` (``create_multi_node_evaluator`` weights
    ranks equally, which is wrong when shards differ in size). Returns ``evaluator``."""
    local_evaluate = evaluator.evaluate

    def evaluate():
        local = {k: float(np.asarray(getattr(v, 'array', v))) for k, v in local_evaluate().items()}
        parts = comm.mpi_comm.allgather((local, int(count)))
        out = {}
        for key in local:
            pairs = [(r[key], c) for r, c in parts if key in r and c > 0]
            total = sum(c for _, c in pairs)
            out[key] = sum(v * c for v, c in pairs) / total if total else float('nan')
        return out

    evaluator.evaluate = evaluate
    return evaluator


def shard_labelled(dataset, labels, comm, seed: int = 0):
    """:func:`shard` of a training set together with its ``(N,)`` labels (for samplers)."""
    if comm is None:
        return dataset, labels
    idx = shard_indices(len(dataset), comm.rank, comm.size, True, seed)
    return IndexedSubset(dataset, idx), np.asarray(labels)[idx]


def per_rank(count: int, comm) -> int:
    """A per-epoch sample count split over the ranks (rounded up, so the global epoch is at
    least ``count``)."""
    return count if comm is None else -(-int(count) // comm.size)
