"""The standard set of reports and snapshots of a ``kr`` training run."""

from chainer.training import extensions

from kr.training.extensions import FailOnNonFinite

#: Snapshot file pattern of trainer states (what ``--resume`` takes).
SNAPSHOT_PATTERN = 'snapshot_iter_{.updater.iteration}'
#: Model weight files, as in the original (``model_700.npz``).
MODEL_PATTERN = 'model_{.updater.epoch}.npz'
#: Weights written when a run ends, whatever its length (what the next script takes).
FINAL_MODEL = 'model_final.npz'


def extend_standard(trainer, model, print_keys, plots=None, log_interval=(10, 'iteration'),
                    snapshot_interval=(1, 'epoch'), model_interval=(1, 'epoch'),
                    progress_interval: int = 10, n_retains: int = 2,
                    check_keys=('main/loss',)) -> None:
    """Add logging, printing, plots, snapshots and the divergence check to ``trainer``.

    Args:
        trainer: The :class:`chainer.training.Trainer`.
        model: Link whose weights go to ``model_<epoch>.npz``.
        print_keys: Observation keys shown by PrintReport after epoch/iteration.
        plots: ``{filename.png: [keys]}`` drawn by PlotReport against the epoch.
        log_interval: LogReport / PlotReport trigger.
        snapshot_interval: Trainer snapshot trigger (``snapshot_iter_<n>``, for ``--resume``).
        model_interval: ``model_<epoch>.npz`` trigger.
        progress_interval: ProgressBar update interval in iterations.
        n_retains: Trainer snapshots kept on disk.
        check_keys: Losses checked for NaN/inf every iteration.
    """
    trainer.extend(FailOnNonFinite(check_keys))
    trainer.extend(extensions.LogReport(trigger=log_interval))
    trainer.extend(extensions.observe_lr(), trigger=log_interval)
    trainer.extend(extensions.PrintReport(['epoch', 'iteration'] + list(print_keys)
                                          + ['lr', 'elapsed_time']))
    trainer.extend(extensions.ProgressBar(update_interval=progress_interval))
    if plots and extensions.PlotReport.available():
        for filename, keys in plots.items():
            trainer.extend(extensions.PlotReport(list(keys), x_key='epoch', trigger=log_interval,
                                                 filename=filename))
    trainer.extend(extensions.snapshot(filename=SNAPSHOT_PATTERN, n_retains=n_retains),
                   trigger=snapshot_interval)
    trainer.extend(extensions.snapshot_object(model, MODEL_PATTERN), trigger=model_interval)
