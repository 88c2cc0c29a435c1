"""Trainer extensions shared by the detector and classifier training."""

import math
import os
import re
import time

import chainer
from chainer.training import extensions
from chainer.training import triggers

#: Fractions of training after which the lr is multiplied by :data:`LR_DROP_RATE`
#: (the original: x0.1 at 50% and 75% of the epochs).
LR_DROP_POINTS = (0.5, 0.75)
LR_DROP_RATE = 0.1


class _LrDropTrigger(triggers.ManualScheduleTrigger):
    """A ManualScheduleTrigger that never reports itself ``finished``.

    The trainer skips ``initialize`` of extensions whose trigger is finished, and
    ``ExponentialShift.initialize`` is what puts a resumed lr back on the fresh optimizer
    (the lr is not part of the optimizer's saved state): without this, a run resumed after
    its last drop would silently train at the initial lr again.
    """

    @property
    def finished(self):
        return False

    @finished.setter
    def finished(self, value):
        self._all_points_passed = value


def lr_drop(stop_trigger, points=LR_DROP_POINTS, rate: float = LR_DROP_RATE, attr: str = 'lr',
            optimizer=None):
    """An lr drop as a stateful ExponentialShift on a ManualScheduleTrigger.

    Both objects are serialized with trainer snapshots, so a run resumed after a drop keeps
    the dropped lr (the original's stateless ``LearningRateDrop`` hook reset it), also after
    the last drop (see :class:`_LrDropTrigger`).

    Args:
        stop_trigger: ``(length, unit)`` of the whole run, e.g. ``(700, 'epoch')``.
        points: Fractions of the run at which to drop.
        rate: Multiplier applied at each point.
        attr: Optimizer hyperparameter to shift.
        optimizer: Target optimizer (default: the main one).

    Returns:
        tuple: ``(extension, trigger)`` to pass to ``trainer.extend``.
    """
    length, unit = stop_trigger
    at = [length * p for p in points]
    if unit == 'iteration':
        at = [max(1, int(math.ceil(a))) for a in at]
    shift = extensions.ExponentialShift(attr, rate, optimizer=optimizer)
    return shift, _LrDropTrigger(at, unit)


def extend_lr_drop(trainer, stop_trigger, **kwargs) -> None:
    """Register :func:`lr_drop` on ``trainer`` under the name ``lr_drop``."""
    ext, trigger = lr_drop(stop_trigger, **kwargs)
    trainer.extend(ext, trigger=trigger, name='lr_drop')


class TrainingDiverged(RuntimeError):
    """Raised by :class:`FailOnNonFinite` when a reported loss is NaN or infinite."""


class FailOnNonFinite(chainer.training.Extension):
    """Stop training with :class:`TrainingDiverged` as soon as a loss is not finite.

    Runs before every other extension (priority above the writers), so no snapshot of the
    broken state is written and the last good snapshot is kept.

    With a ChainerMN communicator the check is collective: the ranks exchange what they
    found every iteration, and a loss that is not finite on any rank stops every rank with
    the same message (instead of one rank stopping and the others waiting for it forever).

    Args:
        keys: Observation keys to check (those absent in an iteration are skipped).
        comm: A ChainerMN communicator (``None``: one process).
    """

    trigger = 1, 'iteration'
    priority = chainer.training.PRIORITY_WRITER + 100

    def __init__(self, keys=('main/loss',), comm=None):
        self.keys = tuple(keys)
        self.comm = comm

    def __call__(self, trainer):
        bad = None
        for key in self.keys:
            value = trainer.observation.get(key)
            if value is None:
                continue
            value = float(chainer.backend.CpuDevice().send(getattr(value, 'array', value)))
            if not math.isfinite(value):
                bad = (key, value)
                break
        where = ''
        if self.comm is not None:
            found = [(r, b) for r, b in enumerate(self.comm.mpi_comm.allgather(bad)) if b]
            if found:
                rank, bad = found[0]
                where = ' on rank {} of {}'.format(rank, self.comm.size)
        if bad is not None:
            raise TrainingDiverged('{} is {}{} at iteration {}: training stopped; {}'.format(
                bad[0], bad[1], where, trainer.updater.iteration, _what_is_kept(trainer.out)))


def _what_is_kept(out: str) -> str:
    """What a diverged run leaves to resume from, for its error message."""
    # snapshot_iter_<n>, or snapshot_iter_<n>.<rank> in a distributed run
    pattern = re.compile(r'^(snapshot_iter_(\d+))(\.\d+)?$')
    found = sorted((int(m.group(2)), m.group(1)) for name in (os.listdir(out) if os.path.isdir(out)
                                                              else ())
                   for m in [pattern.match(name)] if m)
    if not found:
        return 'no snapshot was written yet: start again with a lower --lr'
    return ('the snapshots are kept, the last one {} (iteration {}); its weights may already '
            'be on their way to diverging, so resume from it or an earlier one with a lower '
            '--lr'.format(os.path.join(out, found[-1][1]), found[-1][0]))


#: Least wall-clock seconds between two redraws of a :class:`PlotLog` figure.
PLOT_SECONDS = 30.0


class PlotLog(chainer.training.Extension):
    """Curves of logged values against the epoch, drawn from the LogReport's entries.

    Chainer's ``PlotReport`` redraws and saves its figure every time it aggregates (every
    log interval); a save took 0.12 s, so with a log every 10 iterations (two figures) the
    profiled demo classifier spent 12% of its time drawing, and its 2,400 iterations took
    5.8 minutes with this extension instead of 6.2. This draws the same points (the
    LogReport's means over each log interval) at most every ``min_seconds`` and once more
    when training ends or stops (``finalize``), so the file is at most that old while a run
    is watched. It keeps no state of its own: a resumed run's figure is drawn from the
    resumed LogReport.

    Args:
        keys: Logged keys (``main/loss``, ``validation/main/map``...); absent ones are
            left out.
        filename: Figure file in the trainer's ``out`` folder.
        x_key: Logged key of the x axis.
        min_seconds: Least seconds between two redraws.
        log_name: Name of the LogReport extension whose entries are drawn.
    """

    trigger = 1, 'iteration'
    priority = extensions.LogReport.priority - 1   # after the LogReport has written

    def __init__(self, keys, filename: str, x_key: str = 'epoch',
                 min_seconds: float = PLOT_SECONDS, log_name: str = 'LogReport'):
        self.keys = list(keys)
        self.filename = filename
        self.x_key = x_key
        self.min_seconds = min_seconds
        self.log_name = log_name
        self._drawn_entries = 0
        self._last_draw = None
        self._trainer = None

    @staticmethod
    def available() -> bool:
        return extensions.PlotReport.available()

    def _entries(self, trainer):
        try:
            return trainer.get_extension(self.log_name).log
        except ValueError:  # no LogReport
            return []

    def __call__(self, trainer):
        self._trainer = trainer
        entries = self._entries(trainer)
        if len(entries) == self._drawn_entries:
            return
        now = time.monotonic()
        if self._last_draw is not None and now - self._last_draw < self.min_seconds:
            return
        self.draw(trainer.out, entries)
        self._last_draw = now

    def finalize(self):
        if self._trainer is not None:
            entries = self._entries(self._trainer)
            if len(entries) != self._drawn_entries:
                self.draw(self._trainer.out, entries)

    def draw(self, out: str, entries) -> None:
        """Write the figure of ``entries`` (LogReport dicts) to ``out/filename``."""
        import matplotlib.pyplot as plt
        figure = plt.figure()
        try:
            axes = figure.add_subplot(111)
            axes.set_xlabel(self.x_key)
            axes.grid()
            for key in self.keys:
                xy = [(e[self.x_key], e[key]) for e in entries if key in e and self.x_key in e]
                if xy:
                    axes.plot([x for x, _ in xy], [y for _, y in xy], marker='x', label=key)
            if axes.has_data():
                legend = axes.legend(bbox_to_anchor=(1.05, 1), loc=2, borderaxespad=0.)
                figure.savefig(os.path.join(out, self.filename), bbox_extra_artists=(legend,),
                               bbox_inches='tight')
        finally:
            plt.close(figure)
        self._drawn_entries = len(entries)
