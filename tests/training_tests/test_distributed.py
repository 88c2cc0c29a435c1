"""Data-parallel training: shards and rules, then 2 CPU ranks under mpiexec."""
import glob
import json
import os
import shutil
import subprocess
import sys

import chainer
import chainer.links as L
import numpy as np
import pytest

from kr.training.distributed import rank_device
from kr.training.distributed import rank_seed
from kr.training.distributed import scaled_lr
from kr.training.distributed import shard_indices

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class _Comm:
    def __init__(self, rank, size, intra_rank=None):
        self.rank, self.size, self.intra_rank = rank, size, rank if intra_rank is None else intra_rank


def test_training_shards_are_equal_and_cover_everything():
    shards = [shard_indices(10, r, 3, True, seed=5) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    together = np.concatenate(shards)
    assert set(together.tolist()) == set(range(10)) and len(together) == 12  # 2 repeated
    np.testing.assert_array_equal(shard_indices(10, 1, 3, True, seed=5), shards[1])


def test_validation_shards_are_contiguous_blocks_in_order():
    shards = [shard_indices(7, r, 2, train=False).tolist() for r in range(2)]
    assert shards == [[0, 1, 2], [3, 4, 5, 6]]


def test_device_seed_and_lr_rules():
    assert rank_device('0', _Comm(1, 2)) == '@cupy:1' and rank_device('-1', _Comm(1, 2)) == '-1'
    assert rank_device('@cupy:0', _Comm(3, 4, intra_rank=1)) == '@cupy:1'
    assert rank_device('@numpy', _Comm(1, 2)) == '@numpy' and rank_device('0', None) == '0'
    assert rank_seed(7, _Comm(0, 2)) == 7 and rank_seed(7, _Comm(1, 2)) != 7
    assert rank_seed(None, _Comm(1, 2)) is None and rank_seed(7, None) == 7
    assert scaled_lr(0.1, 'linear', 4) == pytest.approx(0.4)
    assert scaled_lr(0.1, 'sqrt', 4) == pytest.approx(0.2) and scaled_lr(0.1, 'none', 4) == 0.1
    with pytest.raises(ValueError, match='unknown lr rule'):
        scaled_lr(0.1, 'cubic', 2)


def _mpi_ready():
    if shutil.which('mpiexec') is None:
        return 'mpiexec not found (install OpenMPI: Debian openmpi-bin libopenmpi-dev)'
    try:
        import mpi4py  # NOQA
    except ImportError:
        return 'mpi4py not installed (the dist extra)'
    return None


needs_mpi = pytest.mark.skipif(_mpi_ready() is not None, reason=str(_mpi_ready()))


def run_case(case, out, n=2, timeout=240):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', NUMBA_NUM_THREADS='1')
    cmd = ['mpiexec', '--oversubscribe', '-n', str(n)]
    if os.geteuid() == 0:
        cmd.insert(1, '--allow-run-as-root')
    proc = subprocess.run(cmd + [sys.executable, os.path.join(HERE, 'mpi_cases.py'), case,
                                 str(out)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.load(open(str(out / '{}.{}.json'.format(case, r)))) for r in range(n)]


@needs_mpi
def test_two_ranks_keep_the_same_weights_and_rank_0_writes_the_files(tmp_path):
    records = run_case('same_weights', tmp_path)
    assert records[0] == records[1] and records[0]['iteration'] == 3
    a, b = (np.load(str(tmp_path / 'same_weights.{}.npz'.format(r))) for r in range(2))
    np.testing.assert_array_equal(a['W'], b['W'])
    np.testing.assert_array_equal(a['b'], b['b'])
    files = sorted(os.listdir(str(tmp_path / 'run')))
    rank1 = [f for f in files if f.endswith('.1')]
    assert rank1 == ['snapshot_iter_2.1', 'snapshot_iter_3.1']  # its own resume state only
    for name in ('args.json', 'log', 'model_final.npz', 'model_iter_2.npz', 'snapshot_iter_2.0'):
        assert name in files, name


@needs_mpi
def test_two_ranks_of_batch_b_update_as_one_process_of_batch_2b(tmp_path):
    run_case('first_update', tmp_path)
    got = [np.load(str(tmp_path / 'first_update.{}.npz'.format(r))) for r in range(2)]
    # the same update in one process: rank 0's initial weights (the first update only
    # broadcasts them), on the second batch of both shards together
    sys.path.insert(0, HERE)
    import mpi_cases
    np.random.seed(0)
    predictor = L.Linear(mpi_cases.DIM, 2)
    chain = L.Classifier(predictor)
    opt = chainer.optimizers.NesterovAG(lr=0.1, momentum=0.9)
    opt.setup(chain)
    full = mpi_cases.data()
    B = mpi_cases.B
    idx = np.concatenate([g['shard'][B:2 * B] for g in got])
    x = np.stack([full[i][0] for i in idx])
    t = np.array([full[i][1] for i in idx], dtype=np.int32)
    opt.update(chain, x, t)
    assert np.abs(predictor.W.array - got[0]['W']).max() <= 1e-5
    np.testing.assert_array_equal(got[0]['W'], got[1]['W'])


@needs_mpi
def test_resume_continues_at_the_same_iteration_and_lr_on_both_ranks(tmp_path):
    for record in run_case('resume', tmp_path):
        assert record['again'] == record['whole'] and record['whole'][0] == 4
        assert record['whole'][1] == pytest.approx(0.01) and record['same']


@needs_mpi
def test_a_nan_on_one_rank_stops_both(tmp_path):
    records = run_case('nan', tmp_path)
    for record in records:
        assert record['error'] is not None
        assert 'main/loss is nan on rank 1 of 2 at iteration 2: training stopped' in record['error']


@needs_mpi
def test_the_gathered_map_is_the_single_process_map(tmp_path):
    for record in run_case('map', tmp_path):
        assert record['gathered'] == record['single'] and 0 < record['single'] < 1


@needs_mpi
def test_a_distributed_submission_is_the_single_process_one(tiny_kaggle_dir, tmp_path):
    sys.path.insert(0, REPO)
    from tests.test_pipeline_pieces import OracleRecognizer
    from kr.pseudo_labels import make_pseudo_labels
    from kr.submission import make_submission
    data_dir = tiny_kaggle_dir['data_dir']
    make_submission(OracleRecognizer(data_dir), data_dir, str(tmp_path / 'one' / 'sub'))
    make_pseudo_labels(OracleRecognizer(data_dir, class_threshold=0.9), data_dir,
                       str(tmp_path / 'one' / 'pseudo'))
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    cmd = ['mpiexec', '--oversubscribe', '-n', '2'] + (
        ['--allow-run-as-root'] if os.geteuid() == 0 else [])
    proc = subprocess.run(cmd + [sys.executable, os.path.join(HERE, 'mpi_cases.py'),
                                 'submission', data_dir, str(tmp_path / 'two')], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ('sub/submission.csv', 'sub/detection.csv', 'sub/metrics.json',
                 'pseudo/pseudo_labels.json'):
        one = open(str(tmp_path / 'one' / name), 'rb').read()
        assert open(str(tmp_path / 'two' / name), 'rb').read() == one, name
