"""The training assembler: schedule, triggers, optimizer spec, one tiny run, resume."""
import json
import os

import chainer
import chainer.links as L
import numpy as np
import pytest
from chainer import testing

from kr.training import EveryTrigger
from kr.training import loss_validation
from kr.training import OptimizerSpec
from kr.training import Schedule
from kr.training import train
from kr.training import TrainingResult


def _fires(trigger, length, unit, iter_per_epoch=4):
    trainer = testing.get_trainer_with_mock_updater(stop_trigger=(length, unit),
                                                    iter_per_epoch=iter_per_epoch)
    fired = []
    trainer.extend(lambda t: fired.append(t.updater.iteration), trigger=trigger, name='probe')
    trainer.run()
    return fired


def test_every_trigger_fires_on_the_interval_and_at_the_end():
    every3 = EveryTrigger(3, 'iteration', (10, 'iteration'))
    assert _fires(every3, 10, 'iteration') == [3, 6, 9, 10]
    # an interval in the run's unit that divides the length fires once at the end
    assert _fires(EveryTrigger(5, 'iteration', (10, 'iteration')), 10, 'iteration') == [5, 10]
    # epochs of 4 iterations: every 2 epochs, and the end of a 5-epoch run
    assert _fires(EveryTrigger(2, 'epoch', (5, 'epoch')), 5, 'epoch') == [8, 16, 20]
    # a log interval in iterations inside an epoch run: the end (iteration 20) is logged too
    assert _fires(EveryTrigger(6, 'iteration', (5, 'epoch')), 5, 'epoch') == [6, 12, 18, 20]


def test_schedule_of_and_checks():
    assert Schedule.of(epoch=700).stop == (700, 'epoch')
    assert Schedule.of(epoch=700, iterations=400).stop == (400, 'iteration')  # iterations win
    assert Schedule.of(epoch=3).model_pattern == 'model_{.updater.epoch}.npz'
    assert Schedule.of(iterations=3).model_pattern == 'model_iter_{.updater.iteration}.npz'
    with pytest.raises(ValueError, match='positive number of epochs, got 0'):
        Schedule.of(epoch=0)
    with pytest.raises(ValueError, match='eval_interval must be a positive integer'):
        Schedule(10, eval_interval=0)
    with pytest.raises(ValueError, match=r'fractions of the run in \(0, 1\)'):
        Schedule(10, lr_drops=(0.5, 1.5))
    with pytest.raises(ValueError, match='unit must be epoch or iteration'):
        Schedule(10, 'hour')


def test_optimizer_spec_hooks_in_the_original_order():
    model = L.Linear(2, 2)
    opt, attr = OptimizerSpec('nesterov', 0.1, weight_decay=1e-4, grad_clip=5.0).build(model)
    assert attr == 'lr' and opt.lr == 0.1 and opt.momentum == 0.9
    assert list(opt._hookable._pre_update_hooks) == ["WeightDecay", "GradientClipping"]
    opt, attr = OptimizerSpec('adam', 2e-3).build(L.Linear(2, 2))
    assert attr == "alpha" and opt.alpha == 2e-3 and not opt._hookable._pre_update_hooks
    for bad, match in ((dict(name='sgd'), 'unknown optimizer'), (dict(lr=0), 'lr must be > 0'),
                       (dict(weight_decay=-1), 'weight_decay'), (dict(grad_clip=0), 'grad_clip')):
        with pytest.raises(ValueError, match=match):
            OptimizerSpec(**bad)


def _toy_data(n=32, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 4).astype(np.float32)
    t = (x[:, 0] > 0).astype(np.int32)
    return chainer.datasets.TupleDataset(x, t)


def _toy_run(out, resume=None, length=8):
    np.random.seed(0)
    predictor = L.Linear(4, 2)
    chain = L.Classifier(predictor)
    return train(chain, _toy_data(), out, OptimizerSpec('nesterov', 0.1),
                 Schedule.of(iterations=length, lr_drops=(0.5,), snapshot_interval=4,
                             eval_interval=4, log_interval=2),
                 batchsize=8, model=predictor, validations=[loss_validation(_toy_data(8, 1),
                                                                            chain)],
                 resume=resume, print_keys=['main/loss'], plots={'loss.png': ['main/loss']})


def test_a_run_writes_the_standard_files_and_resumes(tmp_path):
    out = str(tmp_path / 'run')
    result = _toy_run(out)
    assert isinstance(result, TrainingResult)
    assert (result.iteration, result.epoch) == (8, 2)
    assert result.lr == pytest.approx(0.01)  # one drop at 50%
    assert result.model_path == os.path.join(out, 'model_final.npz')
    assert 'validation/main/accuracy' in result.observation
    for name in ('snapshot_iter_4', 'snapshot_iter_8', 'model_iter_4.npz', 'model_iter_8.npz',
                 'model_final.npz', 'log'):
        assert os.path.isfile(os.path.join(out, name)), name
    log = json.load(open(os.path.join(out, 'log')))
    assert [e['iteration'] for e in log] == [2, 4, 6, 8]
    assert 'validation/main/loss' in log[1] and 'validation/main/loss' not in log[0]
    final = L.Linear(4, 2)
    chainer.serializers.load_npz(result.model_path, final)
    np.testing.assert_array_equal(final.W.array, result.model.W.array)

    again = _toy_run(str(tmp_path / 'again'), resume=os.path.join(out, 'snapshot_iter_4'))
    assert again.iteration == 8 and again.lr == pytest.approx(0.01)
    np.testing.assert_allclose(again.model.W.array, result.model.W.array, rtol=1e-6)


def test_unreadable_snapshot_is_named(tmp_path):
    bad = tmp_path / 'snapshot_iter_3'
    bad.write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='cannot resume from .*snapshot_iter_3.*trainer snapshot'):
        _toy_run(str(tmp_path / 'run'), resume=str(bad))
    with pytest.raises(FileNotFoundError, match='snapshot to resume not found'):
        _toy_run(str(tmp_path / 'run'), resume=str(tmp_path / 'nope'))


def test_page_cache_only_where_the_training_process_loads_the_pages():
    from kr.training.assembler import page_cache_budget
    from kr.training.assembler import PAGE_CACHE_BYTES
    from kr.training.assembler import resolve_workers
    assert resolve_workers('-1') == 0 and resolve_workers('-1', 3) == 3
    assert page_cache_budget('-1') == PAGE_CACHE_BYTES == 2 << 30
    assert page_cache_budget(-1, workers=0) == PAGE_CACHE_BYTES
    assert page_cache_budget('-1', workers=2) == 0
