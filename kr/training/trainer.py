"""The standard set of reports and snapshots of a ``kr`` training run."""

from chainer.training import extensions

from kr.runs import FINAL_MODEL  # NOQA: re-exported
from kr.training.extensions import FailOnNonFinite
from kr.training.extensions import PlotLog

#: Snapshot file pattern of trainer states (what ``--resume`` takes).
SNAPSHOT_PATTERN = 'snapshot_iter_{.updater.iteration}'


def _observed_lr(trainer) -> float:
    """The lr that ``observe_lr`` reports (Adam: its effective step size), or Adam's alpha
    before its first step (the first update of a ChainerMN optimizer only broadcasts the
    weights, and Adam's effective step size is undefined until it steps)."""
    optimizer = trainer.updater.get_optimizer('main')
    try:
        return optimizer.lr
    except RuntimeError:
        return optimizer.alpha


def extend_standard(trainer, model, print_keys, schedule, plots=None,
                    progress_interval: int = 10, n_retains: int = 2,
                    check_keys=('main/loss',), comm=None) -> None:
    """Add the divergence check, logging, printing, plots and snapshots to ``trainer``.

    Args:
        trainer: The :class:`chainer.training.Trainer`.
        model: Link whose weights go to the model snapshots (``schedule.model_pattern``).
        print_keys: Observation keys shown by PrintReport after epoch/iteration.
        schedule: The run's :class:`kr.training.Schedule` (log and snapshot intervals).
        plots: ``{filename.png: [keys]}`` drawn against the epoch from the log
            (:class:`kr.training.extensions.PlotLog`).
        progress_interval: ProgressBar update interval in iterations.
        n_retains: Trainer snapshots kept on disk.
        check_keys: Losses checked for NaN/inf every iteration.
        comm: A ChainerMN communicator: then the divergence check is collective (a NaN on
            any rank stops every rank), each rank writes its own trainer snapshot
            (``snapshot_iter_<n>.<rank>``, to resume on the same number of ranks), and the
            extensions that print or write other files run on rank 0 only.
    """
    trainer.extend(FailOnNonFinite(check_keys, comm=comm))
    snapshot = extensions.snapshot(filename=SNAPSHOT_PATTERN, n_retains=n_retains)
    if comm is not None:
        from chainermn.extensions import multi_node_snapshot
        snapshot = multi_node_snapshot(comm, snapshot, [[r] for r in range(comm.size)])
    if comm is not None and comm.rank != 0:
        trainer.extend(snapshot, trigger=schedule.every(schedule.snapshot_interval))
        return
    log = schedule.log_interval
    trainer.extend(extensions.LogReport(trigger=schedule.every(log, 'iteration')))
    trainer.extend(extensions.observe_value('lr', _observed_lr),
                   trigger=schedule.every(log, 'iteration'))
    trainer.extend(extensions.PrintReport(['epoch', 'iteration'] + list(print_keys)
                                          + ['lr', 'elapsed_time']))
    trainer.extend(extensions.ProgressBar(update_interval=progress_interval))
    if plots and PlotLog.available():
        for filename, keys in plots.items():
            trainer.extend(PlotLog(keys, filename), name='PlotLog/' + filename)
    trainer.extend(snapshot, trigger=schedule.every(schedule.snapshot_interval))
    trainer.extend(extensions.snapshot_object(model, schedule.model_pattern),
                   trigger=schedule.every(schedule.snapshot_interval))
