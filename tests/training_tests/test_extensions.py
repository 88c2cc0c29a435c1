import types

import chainer
import numpy as np
import pytest
from chainer import testing

from kr.training import extend_lr_drop
from kr.training import FailOnNonFinite
from kr.training import lr_drop
from kr.training.extensions import PlotLog
from kr.training import TrainingDiverged


def make_trainer(optimizer, length=20, unit='iteration', out='.'):
    trainer = testing.get_trainer_with_mock_updater(stop_trigger=(length, unit), iter_per_epoch=4)
    trainer.out = out
    extend_lr_drop(trainer, (length, unit), optimizer=optimizer)
    seen = []
    trainer.extend(lambda t: seen.append((t.updater.iteration, optimizer.lr)),
                   trigger=(1, 'iteration'), name='record')
    return trainer, seen


def test_drops_at_half_and_three_quarters():
    optimizer = types.SimpleNamespace(lr=0.1)
    trainer, seen = make_trainer(optimizer)
    trainer.run()
    lrs = dict(seen)
    # the drop runs after the update of its iteration: lr seen by iteration 11 is dropped
    assert lrs[10] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert lrs[15] == pytest.approx(0.001) and lrs[14] == pytest.approx(0.01)
    assert optimizer.lr == pytest.approx(0.001)


def test_epoch_unit_points():
    ext, trigger = lr_drop((700, 'epoch'))
    assert trigger.points == [350.0, 525.0] and trigger.unit == 'epoch'
    _, trigger = lr_drop((3, 'iteration'))
    assert trigger.points == [2, 3]


def test_resume_keeps_the_dropped_lr(tmp_path):
    path = str(tmp_path / 'snapshot.npz')
    full_opt = types.SimpleNamespace(lr=0.1)
    full, full_seen = make_trainer(full_opt)
    full.run()

    opt = types.SimpleNamespace(lr=0.1)
    first, first_seen = make_trainer(opt, out=str(tmp_path))
    first.extend(lambda t: chainer.serializers.save_npz(path, t), trigger=(12, 'iteration'),
                 name='snap')
    first.stop_trigger = chainer.training.triggers.IntervalTrigger(12, 'iteration')
    first.run()
    assert opt.lr == pytest.approx(0.01)

    # a fresh process: new optimizer at the initial lr, state loaded from the snapshot
    opt2 = types.SimpleNamespace(lr=0.1)
    second, second_seen = make_trainer(opt2)
    chainer.serializers.load_npz(path, second)
    # the mock updater does not serialize its counters: restore them as a real one would
    second.updater.iteration, second.updater.epoch_detail = 12, 12 / 4
    second.updater.epoch, second.updater.previous_epoch_detail = 3, 11 / 4
    second.run()
    assert second.updater.iteration == 20
    assert dict(first_seen[:12] + second_seen) == pytest.approx(dict(full_seen))


def test_fail_on_non_finite(tmp_path):
    trainer = testing.get_trainer_with_mock_updater(stop_trigger=(5, 'iteration'))
    trainer.out = str(tmp_path)
    values = iter([1.0, np.float32(np.nan)])

    @chainer.training.make_extension(trigger=(1, 'iteration'), priority=chainer.training.PRIORITY_WRITER + 200)
    def report(t):
        t.observation['main/loss'] = chainer.Variable(np.array(next(values), np.float32))

    trainer.extend(report)
    trainer.extend(FailOnNonFinite())
    with pytest.raises(TrainingDiverged, match='main/loss is nan at iteration 2: training stopped'):
        trainer.run()


def test_resume_after_the_last_drop(tmp_path):
    # Chainer skips initialize() of extensions whose trigger is finished; the lr must
    # still come back from the snapshot rather than from the fresh optimizer.
    path = str(tmp_path / 'snapshot.npz')
    opt = types.SimpleNamespace(lr=0.1)
    first, _ = make_trainer(opt)
    first.extend(lambda t: chainer.serializers.save_npz(path, t), trigger=(18, 'iteration'),
                 name='snap')
    first.stop_trigger = chainer.training.triggers.IntervalTrigger(18, 'iteration')
    first.run()
    opt2 = types.SimpleNamespace(lr=0.1)
    second, seen = make_trainer(opt2)
    chainer.serializers.load_npz(path, second)
    second.updater.iteration, second.updater.epoch_detail = 18, 18 / 4
    second.updater.epoch, second.updater.previous_epoch_detail = 4, 17 / 4
    second.run()
    assert [lr for _, lr in seen] == pytest.approx([0.001, 0.001])


class _CountingPlot(PlotLog):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawn = []

    def draw(self, out, entries):
        self.drawn.append(len(entries))
        super().draw(out, entries)


def _plot_trainer(tmp_path, plot, length=20):
    from chainer.training import extensions
    trainer = testing.get_trainer_with_mock_updater(stop_trigger=(length, 'iteration'),
                                                    iter_per_epoch=4)
    trainer.out = str(tmp_path)
    trainer.extend(lambda t: chainer.report({'main/loss': 1.0 / t.updater.iteration}),
                   trigger=(1, 'iteration'), name='loss', priority=300)
    trainer.extend(extensions.LogReport(trigger=(5, 'iteration')))
    trainer.extend(plot, name='plot')
    return trainer


def test_plot_log_draws_the_log_entries_rarely_and_at_the_end(tmp_path):
    pytest.importorskip('matplotlib')
    plot = _CountingPlot(['main/loss', 'validation/main/loss'], 'loss.png', min_seconds=1e9)
    trainer = _plot_trainer(tmp_path, plot)
    trainer.run()
    # the first of the four log entries at once, all four when training ends
    assert plot.drawn == [1, 4]
    assert (tmp_path / 'loss.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    log = trainer.get_extension('LogReport').log
    assert [e['iteration'] for e in log] == [5, 10, 15, 20]


def test_plot_log_without_a_wait_draws_each_new_entry_once(tmp_path):
    pytest.importorskip('matplotlib')
    plot = _CountingPlot(['main/loss'], 'loss.png', min_seconds=0)
    _plot_trainer(tmp_path, plot).run()
    assert plot.drawn == [1, 2, 3, 4]      # finalize finds nothing new


def test_plot_log_without_a_log_report_draws_nothing(tmp_path):
    plot = _CountingPlot(['main/loss'], 'loss.png')
    trainer = testing.get_trainer_with_mock_updater(stop_trigger=(3, 'iteration'))
    trainer.out = str(tmp_path)
    trainer.extend(plot, name='plot')
    trainer.run()
    assert plot.drawn == [] and not (tmp_path / 'loss.png').exists()
