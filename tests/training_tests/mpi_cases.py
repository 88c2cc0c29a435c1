"""Cases of tests/training_tests/test_distributed.py, run on every rank under mpiexec.

    mpiexec -n 2 python tests/training_tests/mpi_cases.py CASE OUT_DIR

Each rank writes what it saw to ``OUT_DIR/<case>.<rank>.json`` (and arrays to ``.npz``),
which the test reads after mpiexec returns.
"""
import json
import os
import sys

import kr  # NOQA: before chainer (kr._compat)
import chainer
import chainer.links as L
import numpy as np

from kr.training import OptimizerSpec
from kr.training import Schedule
from kr.training import train
from kr.training import TrainingDiverged
from kr.training.distributed import create_communicator
from kr.training.distributed import shard_indices

N, DIM, B = 16, 4, 2


def data():
    rng = np.random.RandomState(0)
    x = rng.randn(N, DIM).astype(np.float32)
    return chainer.datasets.TupleDataset(x, (x[:, 0] > 0).astype(np.int32))


class InOrder:
    """An order sampler that keeps the dataset order (so the test knows every batch)."""

    def __call__(self, current_order, current_position):
        return np.arange(self.n) if current_order is None else current_order

    def __init__(self, n):
        self.n = n


class NanOnRank(L.Classifier):
    def __init__(self, predictor, rank, at):
        super().__init__(predictor)
        self.bad_rank, self.at, self.calls = rank, at, 0

    def forward(self, *args):
        loss = super().forward(*args)
        self.calls += 1
        if self.calls == self.at and self.bad_rank == self.comm_rank:
            loss = loss * float('nan')
            chainer.report({'loss': loss}, self)
        return loss


def toy_run(comm, out, iterations, resume=None, chain=None, seed=0, lr_drops=(0.5,)):
    np.random.seed(seed)
    predictor = L.Linear(DIM, 2)
    chain = chain(predictor) if chain else L.Classifier(predictor)
    full = data()
    shard = shard_indices(N, comm.rank, comm.size, True, 0) if comm else np.arange(N)
    from kr.training.distributed import IndexedSubset
    part = IndexedSubset(full, shard)
    result = train(chain, part, out, OptimizerSpec('nesterov', 0.1), Schedule.of(
        iterations=iterations, lr_drops=lr_drops, snapshot_interval=2, eval_interval=100,
        log_interval=1), batchsize=B, model=predictor, order_sampler=InOrder(len(part)),
        resume=resume, comm=comm, lr_rule='none', run_record={'case': 'toy'})
    return result, shard


def main(case, out):
    comm = create_communicator('naive')
    rank = comm.rank
    record = {}
    arrays = {}
    if case == 'same_weights':
        result, _ = toy_run(comm, os.path.join(out, 'run'), 3)
        arrays = {'W': result.model.W.array, 'b': result.model.b.array}
        record = {'iteration': result.iteration, 'lr': result.lr}
    elif case == 'first_update':
        result, shard = toy_run(comm, os.path.join(out, 'run'), 2, lr_drops=())
        arrays = {'W': result.model.W.array, 'shard': shard}
    elif case == 'resume':
        whole, _ = toy_run(comm, os.path.join(out, 'whole'), 4)
        again, _ = toy_run(comm, os.path.join(out, 'again'), 4,
                           resume=os.path.join(out, 'whole', 'snapshot_iter_2'))
        record = {'whole': [whole.iteration, whole.lr], 'again': [again.iteration, again.lr],
                  'same': bool(np.array_equal(whole.model.W.array, again.model.W.array))}
    elif case == 'nan':
        def make(predictor):
            chain = NanOnRank(predictor, rank=1, at=2)
            chain.comm_rank = rank
            return chain
        try:
            toy_run(comm, os.path.join(out, 'run'), 4, chain=make)
            record = {'error': None}
        except TrainingDiverged as e:
            record = {'error': str(e)}
    elif case == 'map':
        from kr.evaluation.detection_map import DetectionMapEvaluator
        rng = np.random.RandomState(3)
        items = [{'image': i, 'bboxes': rng.uniform(0, 50, (3, 2)).repeat(2, 1)
                  + [0, 0, 10, 10]} for i in range(7)]

        class Fake:
            def detect(self, image, score_threshold=None):
                r = np.random.RandomState(image)
                boxes = items[image]['bboxes'] + r.uniform(-4, 4, (3, 4))
                return boxes.astype(np.float32), r.uniform(0, 1, 3).astype(np.float32)

        def evaluate(subset, comm_):
            it = chainer.iterators.SerialIterator(subset, 1, repeat=False, shuffle=False)
            ev = DetectionMapEvaluator(it, L.Linear(1, 1), detector=Fake(), comm=comm_)
            return ev.evaluate()['validation/main/map']
        mine = shard_indices(len(items), rank, comm.size, train=False)
        record = {'gathered': evaluate([items[i] for i in mine], comm),
                  'single': evaluate(items, None)}
    with open(os.path.join(out, '{}.{}.json'.format(case, rank)), 'w') as f:
        json.dump(record, f)
    if arrays:
        np.savez(os.path.join(out, '{}.{}.npz'.format(case, rank)), **arrays)


def submission_case(data_dir, out):
    """Script 07's library side on 2 ranks, with the ground-truth recognizer of the tests."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))))
    from tests.test_pipeline_pieces import OracleRecognizer
    from kr.pseudo_labels import make_pseudo_labels
    from kr.submission import make_submission
    comm = create_communicator('naive')
    make_submission(OracleRecognizer(data_dir), data_dir, os.path.join(out, 'sub'), comm=comm)
    make_pseudo_labels(OracleRecognizer(data_dir, class_threshold=0.9), data_dir,
                       os.path.join(out, 'pseudo'), comm=comm)


if __name__ == '__main__' and sys.argv[1] == 'submission':
    submission_case(sys.argv[2], sys.argv[3])
elif __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
