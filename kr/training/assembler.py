"""The one training assembler of ``kr``: every model trains through :func:`train`.

A model family contributes a train chain (a Link whose call returns the loss and reports
its terms), its datasets and its validations; the assembler owns the rest, the same way
for the detector, the classifier and the finetuning:

* the device, and the iterators (serial on the CPU, loader processes on a GPU) with their
  finalisation;
* the optimizer (:class:`~kr.training.optimizers.OptimizerSpec`: NesterovAG or Adam, weight
  decay, gradient clipping), the updater and the trainer;
* the schedule (:class:`Schedule`): the run length in epochs or iterations, lr drops at
  fractions of the run, and snapshot / validation intervals counted in the run's unit;
* the standard extensions (:func:`kr.training.extend_standard`): log, print, progress bar,
  plots, NaN check, trainer snapshots ``snapshot_iter_<n>`` and model snapshots;
* ``--resume`` from a trainer snapshot, and the final weights ``model_final.npz``, written
  whole or not at all.

Data parallel (ChainerMN, :mod:`kr.training.distributed`): with a communicator, each rank
trains on its shard of the data (the family shards it), the optimizer averages the
gradients over the ranks, each rank validates a block of the validation data and the
results are combined (means by sample count; the mAP from the gathered detections), a NaN on
any rank stops every rank, each rank keeps its own trainer snapshot for resuming on the same
number of ranks, and the reports and other files are written by rank 0 only.
"""

import dataclasses
import logging
import os
import pickle
import zipfile
from typing import Any
from typing import Callable

import chainer
import numpy as np
from chainer.training import extensions
from chainer.training import triggers

from kr import fileio
from kr.devices import get_device
from kr.runs import start_run
from kr.training.extensions import extend_lr_drop
from kr.training.extensions import LR_DROP_POINTS
from kr.training.distributed import combine_by_count
from kr.training.distributed import rank_device
from kr.training.distributed import scaled_lr
from kr.training.distributed import shard
from kr.training.extensions import LR_DROP_RATE
from kr.training.optimizers import OptimizerSpec
from kr.training.trainer import extend_standard
from kr.training.trainer import FINAL_MODEL

logger = logging.getLogger(__name__)

#: Units of a run's length and of its intervals.
UNITS = ('epoch', 'iteration')
#: Loader processes per iterator on a GPU (on the CPU, loading runs in the training process).
GPU_WORKERS = 8
#: Decoded pages a training process keeps in memory when it loads them itself (no loader
#: processes, each of which would hold its own copy): the demo's 240 synthetic pages take
#: 1.0 GB; a real 2,400 x 3,900 page 28 MB, so a real training set does not fit and is
#: decoded at each access as before (see ``cache_bytes`` of ``KuzushijiPageDataset``).
PAGE_CACHE_BYTES = 2 << 30


class EveryTrigger(triggers.IntervalTrigger):
    """Fires every ``period`` units, and also when the run ends (so that a run always ends
    with a validation, a log entry and a snapshot, whatever its length).

    It serialises what :class:`~chainer.training.triggers.IntervalTrigger` does, so trainer
    snapshots written with either trigger (or with a ManualScheduleTrigger) resume.

    Args:
        period: Interval length.
        unit: ``'epoch'`` or ``'iteration'``.
        stop: ``(length, unit)`` of the whole run.
    """

    def __init__(self, period: int, unit: str, stop):
        super().__init__(period, unit)
        self.stop = tuple(stop)

    def _position(self, updater, unit):
        return updater.epoch_detail if unit == 'epoch' else updater.iteration

    def __call__(self, trainer):
        length, unit = self.stop
        before = (self._previous_epoch_detail if unit == 'epoch'
                  else self._previous_iteration)
        fire = super().__call__(trainer)
        return fire or before < length <= self._position(trainer.updater, unit)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long a run is, when its lr drops, and how often it validates, logs and saves.

    Attributes:
        length: Run length in ``unit``.
        unit: ``'epoch'`` or ``'iteration'``.
        lr_drops: Fractions of the run after which the lr is multiplied by ``lr_drop_rate``.
        lr_drop_rate: The multiplier.
        snapshot_interval: Trainer snapshots (``snapshot_iter_<n>``) and model snapshots
            every this many ``unit`` s, and at the end.
        eval_interval: Validation every this many ``unit`` s, and at the end.
        log_interval: Log, print and plot entries every this many iterations, and at the
            end (iterations whatever the unit: a log entry summarises iterations).
    """

    length: int
    unit: str = 'epoch'
    lr_drops: tuple = LR_DROP_POINTS
    lr_drop_rate: float = LR_DROP_RATE
    snapshot_interval: int = 1
    eval_interval: int = 1
    log_interval: int = 100

    @classmethod
    def of(cls, epoch: int = None, iterations: int = None, **kwargs) -> 'Schedule':
        """A schedule of ``iterations`` iterations when given, else of ``epoch`` epochs."""
        if iterations is not None:
            return cls(iterations, 'iteration', **kwargs)
        return cls(epoch, 'epoch', **kwargs)

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError('unit must be epoch or iteration, got {!r}'.format(self.unit))
        if self.length is None or int(self.length) != self.length or self.length < 1:
            raise ValueError('training length must be a positive number of {}s, got {}'
                             .format(self.unit, self.length))
        for name in ('snapshot_interval', 'eval_interval', 'log_interval'):
            value = getattr(self, name)
            if value is None or int(value) != value or value < 1:
                raise ValueError('{} must be a positive integer, got {}'.format(name, value))
        object.__setattr__(self, 'lr_drops', tuple(float(p) for p in self.lr_drops))
        if any(not 0 < p < 1 for p in self.lr_drops) or \
                list(self.lr_drops) != sorted(self.lr_drops):
            raise ValueError('lr_drops must be increasing fractions of the run in (0, 1), got '
                             '{}'.format(', '.join(str(p) for p in self.lr_drops)))

    @property
    def stop(self) -> tuple:
        """``(length, unit)``: the trainer's stop trigger."""
        return int(self.length), self.unit

    def every(self, period: int, unit: str = None) -> EveryTrigger:
        """A fresh trigger firing every ``period`` units (default: the run's) and at the end."""
        return EveryTrigger(int(period), unit or self.unit, self.stop)

    @property
    def model_pattern(self) -> str:
        """Model snapshot names: ``model_<epoch>.npz`` (the original's) for epoch runs,
        ``model_iter_<n>.npz`` for iteration runs."""
        if self.unit == 'epoch':
            return 'model_{.updater.epoch}.npz'
        return 'model_iter_{.updater.iteration}.npz'


@dataclasses.dataclass
class Validation:
    """A validation run by the trainer every ``Schedule.eval_interval``.

    Attributes:
        name: Extension name; its reports appear as ``<name>/main/...`` for Evaluators.
        dataset: What is validated on (with a communicator, each rank validates a
            contiguous block of it).
        extension: ``(iterator, device) -> trainer extension`` (an Evaluator).
        batchsize: Iterator batch size (default: the training batch size).
        gathers: The extension combines the ranks' results itself (a metric that is not a
            mean, such as the mAP, gathers the predictions); otherwise its means are
            averaged over the ranks by sample count.
    """

    name: str
    dataset: Any
    extension: Callable
    batchsize: int = None
    gathers: bool = False


def loss_validation(dataset, target, converter=None, name: str = 'validation',
                    batchsize: int = None) -> Validation:
    """A :class:`Validation` reporting the train chain's loss terms (and accuracy, for a
    :class:`chainer.links.Classifier`) on ``dataset``: ``<name>/main/<key>``."""
    def make(iterator, device):
        kwargs = {} if converter is None else {'converter': converter}
        return extensions.Evaluator(iterator, target, device=device, **kwargs)
    return Validation(name, dataset, make, batchsize)


@dataclasses.dataclass
class TrainingResult:
    """What every training run returns.

    Attributes:
        model: The trained model (the Link saved as ``model_*.npz``), on the CPU.
        model_path: ``<out>/model_final.npz``.
        iteration: Iterations done.
        epoch: Epochs done.
        lr: The optimizer's learning-rate hyperparameter at the end.
        observation: The latest logged value of every reported key (``main/loss``,
            ``validation/main/accuracy``, ``lr`` ...), as floats.
    """

    model: Any
    model_path: str
    iteration: int
    epoch: int
    lr: float
    observation: dict


def resolve_workers(device, workers: int = None) -> int:
    """Loader processes per iterator: ``workers``, or when ``None`` 0 on the CPU and
    :data:`GPU_WORKERS` on a GPU."""
    if workers is not None:
        return workers
    return 0 if get_device(device).xp is np else GPU_WORKERS


def page_cache_budget(device, workers: int = None) -> int:
    """Bytes of decoded pages a page dataset may keep (:data:`PAGE_CACHE_BYTES` when the
    training process loads its own batches, 0 with loader processes)."""
    return PAGE_CACHE_BYTES if resolve_workers(device, workers) == 0 else 0


def make_iterator(dataset, batchsize: int, workers: int = 0, train: bool = True,
                  order_sampler=None):
    """A training (repeating, shuffled or ``order_sampler``-ordered) or validation
    (one ordered pass) iterator: loader processes when ``workers > 0``."""
    if train:
        kwargs = ({'order_sampler': order_sampler} if order_sampler is not None
                  else {'shuffle': True})
    else:
        kwargs = {'repeat': False, 'shuffle': False}
    if workers:
        return chainer.iterators.MultiprocessIterator(dataset, batchsize, n_processes=workers,
                                                      **kwargs)
    return chainer.iterators.SerialIterator(dataset, batchsize, **kwargs)


def check_resume(path: str, comm=None) -> None:
    """Raise FileNotFoundError (naming it) when a ``resume`` snapshot is given but missing
    (this rank's ``<path>.<rank>`` in a distributed run): a family calls it before building
    its datasets, so the mistake is found first."""
    path = snapshot_path(path, comm)
    if not path:
        return
    if not os.path.isfile(path):
        raise FileNotFoundError('snapshot to resume not found: {}'.format(path))
    try:
        with np.load(path) as snapshot:
            is_trainer = 'updater/iteration' in snapshot.files
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise ValueError(_RESUME_ERROR.format(path, type(e).__name__,
                                              str(e).strip("'") or 'unreadable')) from None
    if not is_trainer:
        raise ValueError(_RESUME_ERROR.format(path, 'not a trainer snapshot',
                                              'it holds no updater state: model weights?'))


def snapshot_path(path: str, comm=None) -> str:
    """The file a rank resumes from: ``path`` itself in one process, ``<path>.<rank>`` (what
    ``chainermn.extensions.multi_node_snapshot`` writes) on each rank of a distributed run."""
    return path if comm is None or not path else '{}.{}'.format(path, comm.rank)


_RESUME_ERROR = ('cannot resume from {}: {} ({}); --resume takes a trainer snapshot '
                 '(snapshot_iter_<n>) written by the same script with the same model settings')


def _load_snapshot(path: str, trainer) -> None:
    # ``train`` has run check_resume on ``path``
    try:
        chainer.serializers.load_npz(path, trainer)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile,
            pickle.UnpicklingError) as e:
        raise ValueError(_RESUME_ERROR.format(path, type(e).__name__,
                                              str(e).strip("'") or 'unreadable')) from None


def _save_model(model, path: str) -> None:
    with fileio.atomic_path(path) as tmp:
        chainer.serializers.save_npz(tmp, model)


def _cpu_float(value) -> float:
    return float(chainer.backend.CpuDevice().send(getattr(value, 'array', value)))


def train(chain, train_dataset, out: str, optimizer: OptimizerSpec, schedule: Schedule,
          batchsize: int, model=None, converter=None, validations=(), device=None,
          workers: int = None, order_sampler=None, resume: str = None, print_keys=(),
          plots=None, check_keys=('main/loss',), comm=None,
          progress_interval: int = 10, run_record: dict = None,
          run_files=(), lr_rule: str = 'linear') -> TrainingResult:
    """Train ``chain`` on ``train_dataset`` with a Chainer Trainer; see the module docstring.

    Args:
        chain: Train chain: its call on a converted batch returns the loss Variable and
            ``chainer.report`` s its terms (e.g. ``L.Classifier``, ``CenterNetTrainChain``).
        train_dataset: Training examples.
        out: Output folder (created if missing).
        optimizer: The optimizer, its lr, weight decay and clipping.
        schedule: Run length, lr drops, intervals.
        batchsize: Examples per iteration (per rank with a communicator).
        model: The Link saved as ``model_*.npz`` and ``model_final.npz`` (default ``chain``).
        converter: Batch converter (default :func:`chainer.dataset.concat_examples`).
        validations: :class:`Validation` s run every ``schedule.eval_interval``.
        device: Anything :func:`kr.devices.get_device` takes (default: the CPU).
        workers: Loader processes per iterator (``None``: 0 on the CPU,
            :data:`GPU_WORKERS` on a GPU).
        order_sampler: Training order (one epoch is one order; :mod:`kr.datasets.sampling`);
            ``None``: shuffled passes over ``train_dataset``.
        resume: Trainer snapshot (``snapshot_iter_<n>``) to continue from.
        print_keys: Reported keys printed after ``epoch`` and ``iteration``.
        plots: ``{file.png: [keys]}`` plotted against the epoch.
        check_keys: Reported losses checked for NaN/inf every iteration.
        comm: A ChainerMN communicator (``None``: one process).
        progress_interval: Progress bar update interval in iterations.
        run_record: Written as ``out/args.json`` (by rank 0) once everything is checked
            (device, snapshot), the start of the run; ``out`` must not hold a finished run
            unless resuming.
        run_files: Callables ``write(out)`` run right after ``args.json`` is written (the
            classifier's class table).
        lr_rule: With a communicator, how the lr grows with the global batch
            (:data:`kr.training.distributed.LR_RULES`; ``batchsize`` is per rank).

    Returns:
        TrainingResult

    Raises:
        ValueError: Bad settings, a device that cannot be used, an unreadable snapshot, or
            an ``out`` that holds a finished run (and no ``resume``).
        FileNotFoundError: ``resume`` does not exist.
        kr.training.TrainingDiverged: A loss became NaN or infinite.
    """
    if batchsize is None or batchsize < 1:
        raise ValueError('batchsize must be at least 1, got {}'.format(batchsize))
    check_resume(resume, comm)
    resume = snapshot_path(resume, comm)
    model = chain if model is None else model
    device = get_device(rank_device(device, comm))
    device.use()
    workers = resolve_workers(device, workers)
    chain.to_device(device)
    if comm is not None:
        optimizer = dataclasses.replace(optimizer,
                                        lr=scaled_lr(optimizer.lr, lr_rule, comm.size))
    opt, lr_attr = optimizer.build(chain)
    if comm is not None:
        import chainermn
        opt = chainermn.create_multi_node_optimizer(opt, comm)
    report = comm is None or comm.rank == 0

    iterators = [make_iterator(train_dataset, batchsize, workers, order_sampler=order_sampler)]
    try:
        kwargs = {} if converter is None else {'converter': converter}
        updater = chainer.training.updaters.StandardUpdater(iterators[0], opt, device=device,
                                                            **kwargs)
        trainer = chainer.training.Trainer(updater, schedule.stop, out=out)
        extend_lr_drop(trainer, schedule.stop, points=schedule.lr_drops,
                       rate=schedule.lr_drop_rate, attr=lr_attr)
        for validation in validations:
            dataset = shard(validation.dataset, comm, train=False)
            iterator = make_iterator(dataset, validation.batchsize or batchsize, workers,
                                     train=False)
            iterators.append(iterator)
            extension = validation.extension(iterator, device)
            if comm is not None and not validation.gathers:
                extension = combine_by_count(extension, comm, len(dataset))
            trainer.extend(extension, trigger=schedule.every(schedule.eval_interval),
                           name=validation.name)
        extend_standard(trainer, model, print_keys, plots=plots, schedule=schedule,
                        progress_interval=progress_interval, check_keys=check_keys,
                        comm=comm)
        if resume:
            _load_snapshot(resume, trainer)
            logger.info('resumed from %s at iteration %d', resume, updater.iteration)
            if comm is not None:
                # A fresh multi-node optimizer spends its first update on broadcasting the
                # weights; the snapshots already hold them on every rank, so record the
                # parameters now and the next update is a real one (else a resumed run
                # would lose a step).
                comm.bcast_data(chain)
                opt.is_changed(chain)
        if report:  # everything is checked: the run starts here
            start_run(out, run_record, finished_ok=bool(resume))
            for write in run_files:
                write(out)
        # the error reaches the caller whole; Chainer's own traceback print is noise there
        trainer.run(show_loop_exception_msg=False)
    finally:
        for iterator in iterators:
            iterator.finalize()

    model.to_cpu()
    model_path = os.path.join(out, FINAL_MODEL)
    if report:
        _save_model(model, model_path)
    observation = {}
    if report:
        for entry in trainer.get_extension('LogReport').log:
            observation.update(entry)
    else:
        observation = {k: _cpu_float(v) for k, v in trainer.observation.items()}
    return TrainingResult(model=model, model_path=model_path, iteration=updater.iteration,
                          epoch=updater.epoch, lr=float(getattr(opt, lr_attr)),
                          observation=observation)
