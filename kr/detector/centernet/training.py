"""Training of the CenterNet detector: train chain, converter, datasets and the run itself.

:func:`train_detector` is what ``scripts/03_train_detector.py`` calls; it builds the
datasets, the model, the optimizer and a Chainer trainer, and runs it.
"""

import logging
import os

import chainer
import numpy as np
from chainer.datasets import TransformDataset
from chainer.training import extensions

from kr.cli import parse_device
from kr.datasets import KuzushijiPageDataset
from kr.detector.centernet.decode import n_output_channels
from kr.detector.centernet.loss import centernet_loss
from kr.detector.centernet.model import Res18UnetCenterNet
from kr.detector.centernet.transforms import CenterCropResize
from kr.detector.centernet.transforms import CenterNetTrainTransform
from kr.detector.centernet.transforms import ColorAugmentation
from kr.detector.centernet.transforms import CropOnly
from kr.detector.centernet.transforms import RandomCropResize
from kr.detector.tta import ScaledDetector
from kr.evaluation.detection_map import DetectionMapEvaluator
from kr.training import extend_lr_drop
from kr.training import extend_standard
from kr.training.optimizers import make_optimizer
from kr.training.optimizers import OPTIMIZERS  # NOQA: the --optimizer choices
from kr.training.trainer import FINAL_MODEL

logger = logging.getLogger(__name__)

#: Reported loss keys (under ``main/``): the total and its three terms.
LOSS_KEYS = ('loss', 'loss/score', 'loss/size', 'loss/offset')
#: The original's optimisation (SPEC section 3), in the original's loss units.
ORIGINAL_BATCHSIZE = 16
ORIGINAL_LR = 1e-3
ORIGINAL_WEIGHT_DECAY = 1e-5
ORIGINAL_GRAD_CLIP = 100.0
#: Our loss (batch mean) over the original's (batch sum / output channels) for the
#: original batch of 16 and 5 output channels: 5 / 16. Dividing the lr by it and
#: multiplying weight decay and the clipping norm by it gives exactly the original's
#: parameter updates (SPEC section 3 quirk (b); see ``centernet_loss``).
LOSS_RATIO_TO_ORIGINAL = n_output_channels(1) / ORIGINAL_BATCHSIZE
LR = ORIGINAL_LR / LOSS_RATIO_TO_ORIGINAL
WEIGHT_DECAY = ORIGINAL_WEIGHT_DECAY * LOSS_RATIO_TO_ORIGINAL
GRAD_CLIP = ORIGINAL_GRAD_CLIP * LOSS_RATIO_TO_ORIGINAL

#: Hyperparameter sets of ``--preset``. ``full``: SPEC section 3 (lr 1e-3, weight decay
#: 1e-5, clipping 100 in the original's loss units; 700 epochs, batch 16, 416 px crops,
#: model snapshots every 10 epochs, mAP on 160 val pages). ``demo``: a CPU-sized run that
#: learns the synthetic pages in a few minutes (a quarter-width net, 192 px crops, Adam).
PRESETS = {
    'full': dict(width=1.0, crop_size=416, batchsize=ORIGINAL_BATCHSIZE, epoch=700,
                 iterations=None, optimizer='nesterov', lr=LR, weight_decay=WEIGHT_DECAY,
                 grad_clip=GRAD_CLIP, snapshot_interval=10, eval_interval=10,
                 log_interval=100, val_pages=160),
    'demo': dict(width=0.25, crop_size=192, batchsize=8, epoch=None, iterations=400,
                 optimizer='adam', lr=2e-3, weight_decay=1e-5, grad_clip=GRAD_CLIP,
                 snapshot_interval=100, eval_interval=100, log_interval=10, val_pages=24),
}


def resolve_preset(preset: str, **overrides) -> dict:
    """The keyword arguments of :func:`train_detector` for a preset and explicit overrides.

    ``None`` overrides are ignored. Giving ``epoch`` without ``iterations`` switches an
    iteration-based preset to epochs (and ``iterations`` always wins over ``epoch``).

    Raises:
        ValueError: Unknown preset.
    """
    if preset not in PRESETS:
        raise ValueError('unknown preset {!r}: choose one of {}'.format(
            preset, ', '.join(sorted(PRESETS))))
    kwargs = dict(PRESETS[preset])
    given = {k: v for k, v in overrides.items() if v is not None}
    if 'epoch' in given and 'iterations' not in given:
        kwargs['iterations'] = None
    kwargs.update(given)
    return kwargs


class CenterNetTrainChain(chainer.Chain):
    """Wraps a detector to compute and report the CenterNet loss.

    Reports ``loss`` (the sum) and ``loss/score``, ``loss/size``, ``loss/offset`` (the
    terms of :func:`kr.detector.centernet.loss.centernet_loss`).

    Args:
        model: A detector whose call returns the raw head output and which has
            ``n_fg_class``.
        **loss_kwargs: Passed on to the loss (``size_weight``, ``offset_weight``).

    Call:
        ``x`` ``(N, 3, S, S)`` normalised crops, then the targets of
        ``CenterNetTrainTransform``: ``heatmap`` ``(N, C, S/4, S/4)``, ``size`` and
        ``offset`` ``(N, 2, S/4, S/4)``, ``mask`` ``(N, S/4, S/4)``.

    Returns:
        The scalar loss Variable.
    """

    def __init__(self, model, **loss_kwargs):
        super().__init__()
        self.loss_kwargs = loss_kwargs
        with self.init_scope():
            self.model = model

    def forward(self, x, heatmap, size, offset, mask):
        terms = centernet_loss(self.model(x), heatmap, size, offset, mask,
                               n_fg_class=self.model.n_fg_class, **self.loss_kwargs)
        loss = terms['score'] + terms['size'] + terms['offset']
        report = {'loss': loss}
        report.update({'loss/' + k: v for k, v in terms.items()})
        chainer.report(report, self)
        return loss


@chainer.dataset.converter()
def centernet_converter(batch, device=None):
    """Stack a list of ``(x, heatmap, size, offset, mask)`` examples field by field and
    send each ``(N, ...)`` array to ``device``."""
    return tuple(device.send(np.stack([example[k] for example in batch]))
                 for k in range(len(batch[0])))


def make_datasets(data_dir: str, split_dir: str = None, cv_index: int = 0,
                  full_data: bool = False, crop_size: int = 416, val_pages: int = 160,
                  seed: int = None):
    """Training and validation datasets of the detector.

    Args:
        data_dir: Kaggle-layout folder.
        split_dir: Fold CSVs of scripts/01_split_train_val.py (default ``<data_dir>-gsplit``).
        cv_index: Fold.
        full_data: Train on all of train.csv (``trainval``) instead of the fold's train part.
        crop_size: Side of the training crops in pixels.
        val_pages: Validate on the first this many pages of the fold's val part.
        seed: Seed of the augmentation (``None``: fresh entropy).

    Returns:
        tuple ``(train, val_loss, val_map)``: ``train`` and ``val_loss`` give
        ``(x, heatmap, size, offset, mask)`` (random crops with colour augmentation; centre
        crops at the mean scale), ``val_map`` gives dicts ``image`` / ``bboxes`` of the same
        centre crops. The validation sets are ``None`` when the fold has no val pages.

    Raises:
        FileNotFoundError: Missing data or split files (naming the script to run).
    """
    pages = KuzushijiPageDataset(data_dir, 'trainval' if full_data else 'train', cv_index,
                                 split_dir)
    if len(pages) == 0:
        raise ValueError('no training pages in {}'.format(data_dir))
    train = TransformDataset(pages, CenterNetTrainTransform(
        RandomCropResize(crop_size, seed=seed), ColorAugmentation(seed=seed)))
    val_pages_ds = KuzushijiPageDataset(data_dir, 'val', cv_index, split_dir)
    n_val = min(len(val_pages_ds), val_pages)
    if n_val == 0:
        return train, None, None
    val = chainer.datasets.SubDataset(val_pages_ds, 0, n_val)
    crop = CenterCropResize(crop_size)
    return train, TransformDataset(val, CenterNetTrainTransform(crop)), \
        TransformDataset(val, CropOnly(crop))


def _make_iterator(dataset, batchsize, workers, repeat=True, shuffle=True):
    if workers > 0:
        return chainer.iterators.MultiprocessIterator(
            dataset, batchsize, repeat=repeat, shuffle=shuffle, n_processes=workers)
    return chainer.iterators.SerialIterator(dataset, batchsize, repeat=repeat, shuffle=shuffle)


def train_detector(data_dir: str, out: str, split_dir: str = None, cv_index: int = 0,
                   full_data: bool = False, device='-1', width: float = 1.0,
                   crop_size: int = 416, batchsize: int = ORIGINAL_BATCHSIZE,
                   epoch: int = 700, iterations: int = None, optimizer: str = 'nesterov',
                   lr: float = LR, weight_decay: float = WEIGHT_DECAY,
                   grad_clip: float = GRAD_CLIP, snapshot_interval: int = 10,
                   eval_interval: int = 10, log_interval: int = 100, val_pages: int = 160,
                   workers: int = 0, resume: str = None, seed: int = None,
                   progress_interval: int = 10) -> dict:
    """Train ``Res18UnetCenterNet`` on a Kaggle-layout folder.

    The defaults are the ``full`` preset (see :data:`PRESETS`).

    Adds the standard reports (``kr.training.extend_standard``: log, print, progress bar,
    loss and mAP plots, trainer snapshots ``snapshot_iter_<n>``, ``model_<epoch>.npz``, a
    NaN check), lr drops x0.1 at 50% and 75% (serialized, so they survive ``resume``), and
    on the val pages the validation loss and the VOC mAP (``validation/main/map``).

    Args:
        data_dir: Kaggle-layout folder.
        out: Output folder.
        split_dir: Fold CSVs (default ``<data_dir>-gsplit``).
        cv_index: Fold.
        full_data: Train on all of train.csv.
        device: Chainer device specifier (``-1``, ``0``, ``@cupy:0``...).
        width: Channel multiplier of the network.
        crop_size: Side of the training crops (a multiple of 32).
        batchsize: Crops per iteration.
        epoch: Length of training in epochs (when ``iterations`` is None).
        iterations: Length of training in iterations.
        optimizer: Key of :data:`OPTIMIZERS`.
        lr: Learning rate (Adam's alpha).
        weight_decay: Weight decay rate.
        grad_clip: Gradient-norm clipping threshold.
        snapshot_interval: Trainer and model snapshots every this many epochs (iterations
            when ``iterations`` is given).
        eval_interval: Validation every this many epochs (likewise).
        log_interval: Log and plot every this many iterations.
        val_pages: Number of val pages used for validation.
        workers: Data-loading processes (0: load in the main process).
        resume: Trainer snapshot to resume from.
        seed: Seed of the augmentation and of the initial weights.
        progress_interval: Progress bar update interval in iterations.

    Returns:
        dict: ``model`` (the trained Res18UnetCenterNet, on the CPU), ``model_path``
        (its final weights, ``model_final.npz``), ``iteration``, ``epoch``, ``lr`` (the optimizer's learning
        rate hyperparameter at the end) and ``observation`` (the last reported values).

    Raises:
        ValueError: Bad settings, unreadable images.
        FileNotFoundError: Missing data, split files or snapshot.
        kr.training.TrainingDiverged: The loss became NaN or infinite (the last good
            snapshot is kept).
    """
    if crop_size % 32 or crop_size <= 0:
        raise ValueError('--crop-size must be a positive multiple of 32, got {}'.format(
            crop_size))
    if batchsize < 1:
        raise ValueError('--batchsize must be at least 1, got {}'.format(batchsize))
    if iterations is None and (epoch is None or epoch < 1):
        raise ValueError('give a positive --epoch or --iterations')
    if optimizer not in OPTIMIZERS:
        raise ValueError('unknown optimizer {!r}: choose one of {}'.format(
            optimizer, ', '.join(sorted(OPTIMIZERS))))
    if resume and not os.path.isfile(resume):
        raise FileNotFoundError('snapshot to resume not found: {}'.format(resume))
    stop = (iterations, 'iteration') if iterations is not None else (epoch, 'epoch')
    if stop[0] < 1:
        raise ValueError('training length must be positive, got {} {}s'.format(*stop))

    train, val_loss, val_map = make_datasets(data_dir, split_dir, cv_index, full_data,
                                             crop_size, val_pages, seed)
    logger.info('%d training pages, %d validation pages', len(train),
                0 if val_loss is None else len(val_loss))

    device = chainer.get_device(parse_device(device))
    device.use()
    if seed is not None:
        np.random.seed(seed)
    model = Res18UnetCenterNet(n_fg_class=1, width=width)
    train_chain = CenterNetTrainChain(model)
    train_chain.to_device(device)

    optimizer, lr_attr = make_optimizer(optimizer, lr)
    optimizer.setup(train_chain)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))
    optimizer.add_hook(chainer.optimizer_hooks.GradientClipping(grad_clip))

    train_iter = _make_iterator(train, batchsize, workers)
    updater = chainer.training.updaters.StandardUpdater(
        train_iter, optimizer, converter=centernet_converter, device=device)
    trainer = chainer.training.Trainer(updater, stop, out=out)

    extend_lr_drop(trainer, stop, attr=lr_attr)
    plots = {'loss.png': ['main/loss', 'validation/main/loss']}
    print_keys = ['main/' + k for k in LOSS_KEYS]
    if val_loss is not None:
        trainer.extend(extensions.Evaluator(
            _make_iterator(val_loss, batchsize, workers, repeat=False, shuffle=False),
            train_chain, converter=centernet_converter, device=device),
            trigger=_schedule(eval_interval, stop), name='validation')
        trainer.extend(DetectionMapEvaluator(
            chainer.iterators.SerialIterator(val_map, 1, repeat=False, shuffle=False),
            model, detector=ScaledDetector(model, None)),
            trigger=_schedule(eval_interval, stop), name='validation_map')
        plots['map.png'] = ['validation/main/map']
        print_keys += ['validation/main/loss', 'validation/main/map']
    extend_standard(trainer, model, print_keys, plots=plots,
                    log_interval=(log_interval, 'iteration'),
                    snapshot_interval=_schedule(snapshot_interval, stop),
                    model_interval=_schedule(snapshot_interval, stop),
                    progress_interval=progress_interval)

    if resume:
        chainer.serializers.load_npz(resume, trainer)
        logger.info('resumed from %s at iteration %d', resume, updater.iteration)
    trainer.run()

    model_path = os.path.join(out, FINAL_MODEL)
    model.to_cpu()
    chainer.serializers.save_npz(model_path, model)
    return {'model': model, 'model_path': model_path, 'iteration': updater.iteration,
            'epoch': updater.epoch, 'lr': getattr(optimizer, lr_attr),
            'observation': {k: float(chainer.backend.CpuDevice().send(getattr(v, 'array', v)))
                            for k, v in trainer.observation.items()}}


def _schedule(interval: int, stop):
    """A trigger firing every ``interval`` units of ``stop = (length, unit)`` and at the
    end of the run (so a run always ends with a validation and a snapshot)."""
    length, unit = stop
    points = list(range(interval, length + 1, max(1, interval)))
    if not points or points[-1] != length:
        points.append(length)
    return chainer.training.triggers.ManualScheduleTrigger(points, unit)
