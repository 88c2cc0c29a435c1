"""The standard set of reports and snapshots of a ``kr`` training run."""

from chainer.training import extensions

from kr.runs import FINAL_MODEL  # NOQA: re-exported
from kr.training.extensions import FailOnNonFinite

#: Snapshot file pattern of trainer states (what ``--resume`` takes).
SNAPSHOT_PATTERN = 'snapshot_iter_{.updater.iteration}'


def extend_standard(trainer, model, print_keys, schedule, plots=None,
                    progress_interval: int = 10, n_retains: int = 2,
                    check_keys=('main/loss',), report: bool = True) -> None:
    """Add the divergence check, logging, printing, plots and snapshots to ``trainer``.

    Args:
        trainer: The :class:`chainer.training.Trainer`.
        model: Link whose weights go to the model snapshots (``schedule.model_pattern``).
        print_keys: Observation keys shown by PrintReport after epoch/iteration.
        schedule: The run's :class:`kr.training.Schedule` (log and snapshot intervals).
        plots: ``{filename.png: [keys]}`` drawn by PlotReport against the epoch.
        progress_interval: ProgressBar update interval in iterations.
        n_retains: Trainer snapshots kept on disk.
        check_keys: Losses checked for NaN/inf every iteration.
        report: Register the extensions that print or write files (``False`` on the
            ChainerMN ranks other than 0; the divergence check runs everywhere).
    """
    trainer.extend(FailOnNonFinite(check_keys))
    if not report:
        return
    log = schedule.log_interval
    trainer.extend(extensions.LogReport(trigger=schedule.every(log, 'iteration')))
    trainer.extend(extensions.observe_lr(), trigger=schedule.every(log, 'iteration'))
    trainer.extend(extensions.PrintReport(['epoch', 'iteration'] + list(print_keys)
                                          + ['lr', 'elapsed_time']))
    trainer.extend(extensions.ProgressBar(update_interval=progress_interval))
    if plots and extensions.PlotReport.available():
        for filename, keys in plots.items():
            trainer.extend(extensions.PlotReport(list(keys), x_key='epoch',
                                                 trigger=schedule.every(log, 'iteration'),
                                                 filename=filename))
    snapshots = schedule.every(schedule.snapshot_interval)
    trainer.extend(extensions.snapshot(filename=SNAPSHOT_PATTERN, n_retains=n_retains),
                   trigger=snapshots)
    trainer.extend(extensions.snapshot_object(model, schedule.model_pattern),
                   trigger=schedule.every(schedule.snapshot_interval))
