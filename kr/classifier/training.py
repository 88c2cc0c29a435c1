"""Training of the character classifier (SPEC section 4), the library side of script 04.

:func:`train_classifier` builds everything from folders and options;
:func:`run_classifier_training` is the part that takes ready datasets (for the finetuning
script and distributed wrappers).
"""

import logging
import os

import chainer
import chainer.links as L
import numpy as np
from chainer.training import extensions

from kr.classifier.registry import build_classifier
from kr.classifier.transforms import ClassifierTransform
from kr.classifier.transforms import INPUT_SIZE
from kr.datasets.char_crop import KuzushijiCharCropDataset
from kr.datasets.sampling import DEFAULT_MIN_COUNT
from kr.datasets.sampling import make_sampler
from kr.datasets.unicode_mapping import KuzushijiUnicodeMapping
from kr.training.extensions import extend_lr_drop
from kr.training.optimizers import make_optimizer
from kr.training.optimizers import MOMENTUM
from kr.training.trainer import extend_standard
from kr.training.trainer import FINAL_MODEL

logger = logging.getLogger(__name__)

#: SPEC section 4: NesterovAG lr 0.1, momentum 0.9, weight decay 1e-4, batch 192,
#: 1,000 epochs of 20,000 random samples, snapshot every 100 epochs.
LR = 0.1
WEIGHT_DECAY = 1e-4
BATCH_SIZE = 192
EPOCHS = 1000
EPOCH_SIZE = 20000
SNAPSHOT_INTERVAL = 100
#: Validation every this many epochs on at most this many val crops, a fixed random subset
#: (our choice: the SPEC gives no figure; a fold has ~170k crops on the real data).
EVAL_INTERVAL = 10
VAL_SAMPLES = 20000
#: Data loading processes on a GPU (on the CPU loading runs in the training process).
GPU_LOADER_JOBS = 8

#: Augmentation levels of :func:`make_datasets` (``--augment`` choices).
AUGMENTATIONS = ('full', 'light', 'none')

#: Settings of ``--preset``. ``full`` is the SPEC; ``demo`` learns the synthetic crops on a
#: CPU in a few minutes (smaller crops and network, short run).
PRESETS = {
    'full': {
        'epoch': EPOCHS, 'batchsize': BATCH_SIZE, 'lr': LR, 'weight_decay': WEIGHT_DECAY,
        'epoch_size': EPOCH_SIZE, 'input_size': INPUT_SIZE, 'width': 1.0,
        'snapshot_interval': SNAPSHOT_INTERVAL, 'eval_interval': EVAL_INTERVAL,
        'val_samples': VAL_SAMPLES, 'log_interval': 100, 'augment': 'full',
        'optimizer': 'nesterov', 'model': 'mobilenetv3',
    },
    'demo': {
        # Sized for a CPU: measured on the default synthetic set (176 classes occurring),
        # a quarter-width ResNet18 on 32 x 32 crops learns the most per CPU minute
        # (2 iterations/s on one core; MobileNetV3 of the same accuracy per step runs at
        # 1.3/s, Adam and smaller batches learned slower): 3,000 iterations of 64 crops,
        # about 7 minutes with the kernels of kr.functions; the classifier is what limits
        # the demo's F1, so it gets the time left within the demo's 15 minutes.
        'model': 'resnet18', 'epoch': 60, 'batchsize': 64, 'lr': 0.1,
        'weight_decay': WEIGHT_DECAY, 'epoch_size': 3200, 'input_size': 32, 'width': 0.25,
        'snapshot_interval': 30, 'eval_interval': 4, 'val_samples': 2000, 'log_interval': 10,
        'augment': 'light', 'optimizer': 'nesterov',
    },
}


def apply_preset(args) -> None:
    """Fill the options left unset (``None``) on an argparse namespace from its ``preset``.

    Raises:
        ValueError: Unknown preset.
    """
    if args.preset not in PRESETS:
        raise ValueError('unknown preset {!r}: choose one of {}'.format(
            args.preset, ', '.join(PRESETS)))
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def _check_crop_files(dataset: KuzushijiCharCropDataset) -> None:
    """Raise FileNotFoundError naming the first crop of the index that is not on disk."""
    for n, rec in enumerate(dataset.records):
        path = os.path.join(dataset.crop_dir, rec['image_path'])
        if not os.path.isfile(path):
            raise FileNotFoundError(
                '{} record {} names {}, which does not exist: rerun '
                'scripts/02_crop_characters.py'.format(dataset.index_path, n, path))


def make_datasets(crop_dir: str, mapping, cv_index: int = 0, full_data: bool = False,
                  input_size: int = INPUT_SIZE, augment: str = 'full', val_samples: int = None,
                  seed: int = None, check_files: bool = True):
    """Training and validation datasets of character crops.

    Args:
        crop_dir: Folder written by scripts/02_crop_characters.py.
        mapping: :class:`~kr.datasets.KuzushijiUnicodeMapping` giving the labels.
        cv_index: Fold.
        full_data: Train on every labelled page (``trainval``); validation still uses the
            fold's val crops, which are then part of the training data.
        input_size: Crop side fed to the network.
        augment: Augmentation of training crops: ``'full'`` (SPEC section 4), ``'light'``
            (colour only, SPEC section 5) or ``'none'`` (crop jitter only); see
            :func:`kr.classifier.transforms.build_augmentation`.
        val_samples: Keep at most this many val crops (a fixed random subset).
        seed: Seed of the training transform (crop jitter and augmentation).
        check_files: Check that every crop file of both indexes exists.

    Returns:
        tuple: ``(train, val, train_labels)``: datasets of ``(x, label)`` with ``x``
        ``(3, input_size, input_size)`` float32 normalised and ``label`` int32, and the
        ``(N_train,)`` int32 labels (for samplers).

    Raises:
        FileNotFoundError: A missing index (run script 02) or crop file (named).
        ValueError: A unicode absent from the mapping (named), or an empty index.
    """
    if augment not in AUGMENTATIONS:
        raise ValueError('unknown augmentation {!r}: choose one of {}'.format(
            augment, ', '.join(AUGMENTATIONS)))
    train_raw = KuzushijiCharCropDataset(crop_dir, 'trainval' if full_data else 'train',
                                         cv_index, mapping)
    val_raw = KuzushijiCharCropDataset(crop_dir, 'val', cv_index, mapping)
    for raw in (train_raw, val_raw):
        if len(raw) == 0:
            raise ValueError('{} has no crops'.format(raw.index_path))
        if check_files:
            _check_crop_files(raw)
    train = chainer.datasets.TransformDataset(
        train_raw, ClassifierTransform(input_size, train=True, augment=augment != 'none',
                                       light=augment == 'light', seed=seed))
    val = chainer.datasets.TransformDataset(val_raw, ClassifierTransform(input_size, train=False))
    if val_samples and len(val) > val_samples:
        perm = np.random.RandomState(0).permutation(len(val))
        order = np.concatenate([np.sort(perm[:val_samples]), perm[val_samples:]])
        val = chainer.datasets.SubDataset(val, 0, val_samples, order=order)
    return train, val, train_raw.labels


def _iterator(dataset, batchsize, loaderjob, train, order_sampler=None):
    """MultiprocessIterator with ``loaderjob`` workers, or SerialIterator when it is 0."""
    kwargs = {'order_sampler': order_sampler} if train else {'repeat': False, 'shuffle': False}
    if loaderjob:
        return chainer.iterators.MultiprocessIterator(dataset, batchsize, n_processes=loaderjob,
                                                      **kwargs)
    return chainer.iterators.SerialIterator(dataset, batchsize, **kwargs)


def run_classifier_training(predictor, train, val, out: str, order_sampler=None,
                            device=-1, epoch: int = EPOCHS, iterations: int = None,
                            batchsize: int = BATCH_SIZE, lr: float = LR,
                            momentum: float = MOMENTUM, weight_decay: float = WEIGHT_DECAY,
                            optimizer: str = 'nesterov',
                            lr_drop_points=(0.5, 0.75), resume: str = None,
                            loaderjob: int = None, snapshot_interval: int = SNAPSHOT_INTERVAL,
                            eval_interval: int = EVAL_INTERVAL, log_interval: int = 100):
    """Train ``predictor`` wrapped in :class:`chainer.links.Classifier` with a Trainer.

    NesterovAG with momentum and weight decay; lr x0.1 at ``lr_drop_points`` of the run
    (stateful, so it survives ``resume``); Evaluator accuracy on ``val`` every
    ``eval_interval`` epochs; the standard reports, ``loss.png`` / ``accuracy.png``, trainer
    snapshots and ``model_<epoch>.npz`` (the predictor's weights) every
    ``snapshot_interval`` epochs, and ``model_final.npz`` at the end.

    Args:
        predictor: A :class:`~kr.classifier.ClassifierBase`.
        train: Dataset of ``(x, label)``.
        val: Dataset of ``(x, label)``.
        out: Output folder (must exist).
        order_sampler: Training order (:mod:`kr.datasets.sampling`); one epoch is one
            order. None: shuffled passes over ``train``.
        device: Anything :func:`chainer.get_device` takes.
        epoch: Length of the run in epochs (ignored when ``iterations`` is given).
        iterations: Length of the run in iterations.
        batchsize: Minibatch size (validation too).
        lr: Initial learning rate.
        momentum: NesterovAG momentum.
        optimizer: A key of :data:`kr.training.OPTIMIZERS` (``'nesterov'``, the original's, or
            ``'adam'``, whose alpha is then ``lr``).
        weight_decay: L2 coefficient of the WeightDecay hook.
        lr_drop_points: Fractions of the run at which the lr drops x0.1.
        resume: Trainer snapshot (``snapshot_iter_<n>``) to continue from.
        loaderjob: Loader processes (None: 0 on the CPU, :data:`GPU_LOADER_JOBS` on a GPU).
        snapshot_interval: Epochs between snapshots.
        eval_interval: Epochs between validations.
        log_interval: Iterations between log entries.

    Returns:
        dict: the latest logged value of every key (``main/loss``, ``main/accuracy``,
        ``validation/main/accuracy``, ``lr`` ...), plus ``iteration``, ``epoch`` and
        ``model`` (the path of ``model_final.npz``).

    Raises:
        FileNotFoundError: ``resume`` does not exist.
        kr.training.TrainingDiverged: The loss became NaN/inf.
    """
    if resume and not os.path.isfile(resume):
        raise FileNotFoundError('snapshot to resume {} not found'.format(resume))
    device = chainer.get_device(device)
    device.use()
    if loaderjob is None:
        loaderjob = 0 if device.xp is np else GPU_LOADER_JOBS
    model = L.Classifier(predictor)
    model.to_device(device)
    optimizer, lr_attr = make_optimizer(optimizer, lr, momentum)
    optimizer.setup(model)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))

    train_iter = _iterator(train, batchsize, loaderjob, True, order_sampler)
    val_iter = _iterator(val, batchsize, loaderjob, False)
    updater = chainer.training.StandardUpdater(train_iter, optimizer, device=device)
    stop_trigger = (iterations, 'iteration') if iterations else (epoch, 'epoch')
    trainer = chainer.training.Trainer(updater, stop_trigger, out=out)
    trainer.extend(extensions.Evaluator(val_iter, model, device=device),
                   trigger=(eval_interval, 'epoch'))
    extend_lr_drop(trainer, stop_trigger, points=lr_drop_points, attr=lr_attr)
    extend_standard(
        trainer, predictor,
        ['main/loss', 'main/accuracy', 'validation/main/loss', 'validation/main/accuracy'],
        plots={'loss.png': ['main/loss', 'validation/main/loss'],
               'accuracy.png': ['main/accuracy', 'validation/main/accuracy']},
        log_interval=(log_interval, 'iteration'),
        snapshot_interval=(snapshot_interval, 'epoch'),
        model_interval=(snapshot_interval, 'epoch'))
    if resume:
        chainer.serializers.load_npz(resume, trainer)
        logger.info('resumed from %s at iteration %d', resume, updater.iteration)
    try:
        trainer.run()
    finally:
        for it in (train_iter, val_iter):
            it.finalize()
    model_path = os.path.join(out, FINAL_MODEL)
    chainer.serializers.save_npz(model_path, predictor)
    summary = {}
    for entry in trainer.get_extension('LogReport').log:
        summary.update(entry)
    summary.update(iteration=updater.iteration, epoch=updater.epoch, model=model_path)
    return summary


def train_classifier(data_dir: str, out: str, crop_dir: str = None, model: str = 'mobilenetv3',
                     device=-1, epoch: int = EPOCHS, iterations: int = None,
                     batchsize: int = BATCH_SIZE, lr: float = LR,
                     weight_decay: float = WEIGHT_DECAY, optimizer: str = 'nesterov',
                     full_data: bool = False,
                     cv_index: int = 0, resume: str = None, input_size: int = INPUT_SIZE,
                     width: float = 1.0, sampler: str = 'random', epoch_size: int = EPOCH_SIZE,
                     min_count: int = DEFAULT_MIN_COUNT, augment: str = 'full',
                     loaderjob: int = None, seed: int = None,
                     snapshot_interval: int = SNAPSHOT_INTERVAL,
                     eval_interval: int = EVAL_INTERVAL, val_samples: int = VAL_SAMPLES,
                     log_interval: int = 100) -> dict:
    """Train a character classifier on the crops of script 02 (SPEC section 4).

    The class table is ``<data_dir>/unicode_translation.csv`` (one output per row); an epoch
    is ``epoch_size`` crops drawn by ``sampler``. See :func:`run_classifier_training` for
    the trainer and what is written to ``out``.

    Args:
        data_dir: Kaggle-layout folder (for the class table).
        out: Output folder (must exist; ``kr.cli.setup_run`` makes it).
        crop_dir: Crops of script 02 (default ``<data_dir>-crops``).
        model: A key of :data:`kr.classifier.CLASSIFIERS`.
        device: Anything :func:`chainer.get_device` takes.
        epoch: Run length in epochs (unless ``iterations``).
        iterations: Run length in iterations.
        batchsize: Minibatch size.
        lr: Initial learning rate.
        weight_decay: L2 coefficient.
        optimizer: ``'nesterov'`` (the original's) or ``'adam'`` (``lr`` is its alpha).
        full_data: Train on all labelled pages (see :func:`make_datasets`).
        cv_index: Fold.
        resume: Trainer snapshot to continue from.
        input_size: Crop side in pixels.
        width: Channel multiplier of the network.
        sampler: ``'random'`` or ``'balanced'`` (:mod:`kr.datasets.sampling`).
        epoch_size: Crops per epoch.
        min_count: Minimum effective class count of the balanced sampler.
        augment: ``'full'``, ``'light'`` or ``'none'`` (see :func:`make_datasets`).
        loaderjob: Loader processes (see :func:`run_classifier_training`).
        seed: Seed of the sampler's draws and the training transform (NumPy's global
            generator should be seeded too, as ``setup_run`` does, for the weights).
        snapshot_interval: Epochs between snapshots.
        eval_interval: Epochs between validations.
        val_samples: Validation crops used (a fixed random subset).
        log_interval: Iterations between log entries.

    Returns:
        dict: see :func:`run_classifier_training`.

    Raises:
        FileNotFoundError: Missing class table, crop index, crop file or snapshot.
        ValueError: Bad options, or crops whose unicode is not in the table.
    """
    from kr.cli import default_crop_dir
    crop_dir = crop_dir or default_crop_dir(data_dir)
    for name, value in (('epoch', epoch), ('batchsize', batchsize), ('epoch_size', epoch_size),
                        ('snapshot_interval', snapshot_interval),
                        ('eval_interval', eval_interval), ('log_interval', log_interval)):
        if value is None or value < 1:
            raise ValueError('{} must be at least 1, got {}'.format(name, value))
    if lr <= 0 or weight_decay < 0:
        raise ValueError('lr must be > 0 and weight_decay >= 0, got {} and {}'.format(
            lr, weight_decay))
    mapping = KuzushijiUnicodeMapping(data_dir)
    predictor = build_classifier(model, len(mapping), width=width, input_size=input_size)
    train, val, labels = make_datasets(crop_dir, mapping, cv_index=cv_index,
                                       full_data=full_data, input_size=input_size,
                                       augment=augment, val_samples=val_samples, seed=seed)
    order_sampler = make_sampler(sampler, labels, epoch_size, min_count=min_count,
                                 random_state=np.random.RandomState(seed))
    logger.info('%s (%d classes, width %g, input %d): %d train crops (%d a epoch, %s sampler), '
                '%d val crops', model, len(mapping), width, input_size, len(train), epoch_size,
                sampler, len(val))
    return run_classifier_training(
        predictor, train, val, out, order_sampler=order_sampler, device=device, epoch=epoch,
        iterations=iterations, batchsize=batchsize, lr=lr, weight_decay=weight_decay,
        optimizer=optimizer, resume=resume, loaderjob=loaderjob, snapshot_interval=snapshot_interval,
        eval_interval=eval_interval, log_interval=log_interval)
