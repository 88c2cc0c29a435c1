"""Training of the character classifier (SPEC section 4), the library side of script 04.

:func:`train_classifier` builds the datasets and the network from folders and options and
hands them to the training assembler (:func:`kr.training.train`, through
:func:`train_classifier_chain`, which the finetuning shares).
"""

import functools
import logging
import os

import chainer
import chainer.links as L
import numpy as np

from kr.classifier.registry import build_classifier
from kr.classifier.registry import save_class_table
from kr.classifier.transforms import ClassifierTransform
from kr.classifier.transforms import INPUT_SIZE
from kr.datasets.char_crop import KuzushijiCharCropDataset
from kr.datasets.layout import default_crop_dir
from kr.datasets.sampling import DEFAULT_MIN_COUNT
from kr.datasets.sampling import make_sampler
from kr.datasets.unicode_mapping import KuzushijiUnicodeMapping
from kr.runs import seed_everything
from kr.training.distributed import per_rank
from kr.training.distributed import rank_seed
from kr.training.distributed import shard_labelled
from kr.training import check_resume
from kr.training.assembler import page_cache_budget
from kr.training import loss_validation
from kr.training import OptimizerSpec
from kr.training import Schedule
from kr.training import train
from kr.training.extensions import LR_DROP_POINTS
from kr.training.optimizers import MOMENTUM

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
#: Augmentation levels of :func:`make_datasets` (``--augment`` choices).
AUGMENTATIONS = ('full', 'light', 'none')

#: ``--preset`` settings (see :func:`kr.training.resolve_preset`). ``full`` is
#: :func:`train_classifier`'s defaults, the SPEC's schedule (MobileNetV3-Large at 112 px,
#: NesterovAG lr 0.1, 1,000 epochs of 20,000 crops in batches of 192).
PRESETS = {
    'full': {},
    'demo': {
        # Sized for a CPU: measured on the default synthetic set (176 classes occurring),
        # a quarter-width ResNet18 on 32 x 32 crops learns the most per CPU minute
        # (2 iterations/s on one core; MobileNetV3 of the same accuracy per step runs at
        # 1.3/s, Adam and smaller batches learned slower): 3,000 iterations of 64 crops,
        # about 7 minutes with the kernels of kr.functions. Cut to 2,400 iterations
        # (48 epochs) and a validation every 8 epochs so that `make demo` stays within 10
        # minutes on 2 cores: the classifier is its longest step (issue 13; validation
        # accuracy on the crops was 0.99 after 3,000). On the brush-font pages of issue 13
        # (six fonts, so several shapes a class) this network underfits in so few steps:
        # without the 0.5 dropout before its class layer it was right on 0.94 of the test
        # pages' true boxes instead of 0.855, and the wide crop jitter suits the boxes of
        # the demo's detector (0.84 of them right instead of 0.81; demo F1 before
        # finetuning 0.69 -> 0.77 -> 0.80). The SPEC's lr drops at 50 % and 75 % spend the
        # last quarter at lr 0.001, where this short run gains nothing (validation 0.944 ->
        # 0.946): dropping at 70 % and 90 % keeps the high lr longer (0.960; right on 0.930
        # of the test pages' true boxes instead of 0.920, 0.820 of the matched detections
        # kept right at the class threshold instead of 0.807). A wider jitter (side down to
        # 0.8-0.85 of the character, for the detector's small boxes) did not help. 55
        # epochs (2,750 iterations) since the training keeps its crops in memory and draws
        # its figures rarely (2,400 took 5.8 instead of 6.2 minutes): 57 gave validation
        # 0.963 instead of 0.954 and demo F1 before finetuning 0.823 instead of 0.812.
        'model': 'resnet18', 'epoch': 55, 'batchsize': 64, 'lr': 0.1, 'epoch_size': 3200,
        'input_size': 32, 'width': 0.25, 'snapshot_interval': 24, 'eval_interval': 8,
        'val_samples': 2000, 'log_interval': 10, 'augment': 'light', 'dropout': 0.0,
        'jitter': 'wide', 'lr_drops': (0.7, 0.9),
    },
    # The second seed's recipe (SPEC section 11): Xception ("fewer parameters", "no big
    # difference" from ResNet50: pass --model resnet50 for the other), backbone - average
    # pooling - dropout - softmax (both architectures' heads), trained without class
    # balancing (uniform sampling over the crops) and without data augmentation. The seed
    # gives no schedule or crop size: those stay the full preset's.
    'seed000': {'model': 'xception', 'augment': 'none', 'sampler': 'random'},
}


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
                  seed: int = None, check_files: bool = True, jitter: str = 'spec',
                  cache_bytes: int = 0):
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
        jitter: Training crop jitter (:data:`kr.classifier.transforms.JITTERS`).
        cache_bytes: Decoded crops kept in memory by the training crops and by the
            validation crops, each (``cache_bytes`` of :class:`KuzushijiCharCropDataset`).

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
                                         cv_index, mapping, cache_bytes=cache_bytes)
    val_raw = KuzushijiCharCropDataset(crop_dir, 'val', cv_index, mapping,
                                       cache_bytes=cache_bytes)
    for raw in (train_raw, val_raw):
        if len(raw) == 0:
            raise ValueError('{} has no crops'.format(raw.index_path))
        if check_files:
            _check_crop_files(raw)
    train = chainer.datasets.TransformDataset(
        train_raw, ClassifierTransform(input_size, train=True, augment=augment != 'none',
                                       light=augment == 'light', seed=seed, jitter=jitter))
    val = chainer.datasets.TransformDataset(val_raw, ClassifierTransform(input_size, train=False))
    if val_samples and len(val) > val_samples:
        perm = np.random.RandomState(0).permutation(len(val))
        order = np.concatenate([np.sort(perm[:val_samples]), perm[val_samples:]])
        val = chainer.datasets.SubDataset(val, 0, val_samples, order=order)
    return train, val, train_raw.labels


def train_classifier_chain(predictor, train_set, val_set, out: str, order_sampler=None,
                           device=-1, epoch: int = EPOCHS, iterations: int = None,
                           batchsize: int = BATCH_SIZE, optimizer: str = 'nesterov',
                           lr: float = LR, weight_decay: float = WEIGHT_DECAY,
                           lr_drop_points=LR_DROP_POINTS, workers: int = None,
                           resume: str = None, snapshot_interval: int = SNAPSHOT_INTERVAL,
                           eval_interval: int = EVAL_INTERVAL, log_interval: int = 100,
                           comm=None, run_record: dict = None, class_table=None,
                           lr_rule: str = 'linear'):
    """Train ``predictor`` in :class:`chainer.links.Classifier` (softmax cross-entropy,
    accuracy) through the training assembler; the part the finetuning shares.

    Reports ``main/loss``, ``main/accuracy`` and their ``validation/`` twins; plots
    ``loss.png`` and ``accuracy.png``; the predictor's weights are the model files.

    Args:
        predictor: A :class:`~kr.classifier.ClassifierBase`.
        train_set: Dataset of ``(x, label)``.
        val_set: Dataset of ``(x, label)`` (validated every ``eval_interval``).
        out: Output folder.
        order_sampler: Training order (:mod:`kr.datasets.sampling`); ``None``: shuffled.
        device, workers, resume, comm: As in :func:`kr.training.train`.
        epoch: Run length in epochs (ignored when ``iterations`` is given).
        iterations: Run length in iterations.
        batchsize: Minibatch size (validation too).
        optimizer: ``'nesterov'`` (the original's, momentum 0.9) or ``'adam'`` (``lr`` is
            its alpha).
        lr: Initial learning rate.
        weight_decay: L2 coefficient.
        lr_drop_points: Fractions of the run after which the lr drops x0.1.
        snapshot_interval: Snapshots every this many epochs (iterations when
            ``iterations`` is given), and at the end.
        eval_interval: Validation likewise.
        log_interval: Iterations between log entries.
        run_record: Written as ``out/args.json`` when the run starts.
        class_table: The :class:`~kr.datasets.KuzushijiUnicodeMapping` copied into ``out``
            when the run starts (what makes the run folder self-contained).
        lr_rule: With ``comm``, how the lr grows with the global batch.

    Returns:
        kr.training.TrainingResult
    """
    chain = L.Classifier(predictor)
    run_files = [] if class_table is None else [functools.partial(save_class_table, class_table)]
    return train(
        chain, train_set, out, OptimizerSpec(optimizer, lr, MOMENTUM, weight_decay),
        Schedule.of(epoch, iterations, lr_drops=lr_drop_points,
                    snapshot_interval=snapshot_interval, eval_interval=eval_interval,
                    log_interval=log_interval),
        batchsize, model=predictor, validations=[loss_validation(val_set, chain)],
        device=device, workers=workers, order_sampler=order_sampler, resume=resume,
        print_keys=['main/loss', 'main/accuracy', 'validation/main/loss',
                    'validation/main/accuracy'],
        plots={'loss.png': ['main/loss', 'validation/main/loss'],
               'accuracy.png': ['main/accuracy', 'validation/main/accuracy']}, comm=comm,
        run_record=run_record, run_files=run_files, lr_rule=lr_rule)


def train_classifier(data_dir: str, out: str, crop_dir: str = None, model: str = 'mobilenetv3',
                     device=-1, epoch: int = EPOCHS, iterations: int = None,
                     batchsize: int = BATCH_SIZE, lr: float = LR,
                     weight_decay: float = WEIGHT_DECAY, optimizer: str = 'nesterov',
                     full_data: bool = False,
                     cv_index: int = 0, resume: str = None, input_size: int = INPUT_SIZE,
                     width: float = 1.0, dropout: float = None, sampler: str = 'random',
                     epoch_size: int = EPOCH_SIZE,
                     min_count: int = DEFAULT_MIN_COUNT, augment: str = 'full',
                     jitter: str = 'spec', workers: int = None, seed: int = None,
                     snapshot_interval: int = SNAPSHOT_INTERVAL,
                     eval_interval: int = EVAL_INTERVAL, val_samples: int = VAL_SAMPLES,
                     log_interval: int = 100, comm=None, lr_rule: str = 'linear',
                     lr_drops=LR_DROP_POINTS, run_record: dict = None):
    """Train a character classifier on the crops of script 02 (SPEC section 4).

    The class table is ``<data_dir>/unicode_translation.csv`` (one output per row); it is
    copied into ``out``, so the run folder is self-contained. An epoch is ``epoch_size``
    crops drawn by ``sampler``. The defaults are the SPEC's schedule (the ``full`` preset);
    what else is written to ``out`` is the training assembler's (:func:`kr.training.train`).

    Args:
        data_dir: Kaggle-layout folder (for the class table).
        out: Output folder (created when missing).
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
        dropout: Dropout ratio before the class layer (``None``: the architecture's own).
        sampler: ``'random'`` or ``'balanced'`` (:mod:`kr.datasets.sampling`).
        epoch_size: Crops per epoch.
        min_count: Minimum effective class count of the balanced sampler.
        augment: ``'full'``, ``'light'`` or ``'none'`` (see :func:`make_datasets`).
        jitter: Training crop jitter: ``'spec'`` (SPEC section 4) or ``'wide'``, for a
            detector with looser boxes (:data:`kr.classifier.transforms.JITTERS`).
        workers: Loader processes (``None``: 0 on the CPU, 8 on a GPU). Loading in the
            training process keeps up to :data:`kr.training.assembler.PAGE_CACHE_BYTES` of
            decoded crops in memory (:func:`kr.training.assembler.page_cache_budget`).
        seed: Seed of the initial weights, the sampler's draws and the training transform.
        snapshot_interval: Snapshots every this many epochs (iterations when ``iterations``
            is given), and at the end.
        eval_interval: Validation likewise.
        val_samples: Validation crops used (a fixed random subset).
        log_interval: Iterations between log entries.
        lr_drops: Fractions of the run after which the lr drops x0.1 (SPEC section 4: 50 %
            and 75 %).
        comm, lr_rule, run_record: As in :func:`kr.training.train`; on ``N`` ranks each draws
            ``epoch_size / N`` crops an epoch from its shard with its own random stream, and
            ``batchsize`` is per rank.

    Returns:
        kr.training.TrainingResult: ``model`` is the trained classifier, on the CPU.

    Raises:
        FileNotFoundError: Missing class table, crop index, crop file or snapshot.
        ValueError: Bad options, or crops whose unicode is not in the table.
    """
    crop_dir = crop_dir or default_crop_dir(data_dir)
    check_resume(resume, comm)
    for name, value in (('epoch', epoch), ('batchsize', batchsize), ('epoch_size', epoch_size),
                        ('snapshot_interval', snapshot_interval),
                        ('eval_interval', eval_interval), ('log_interval', log_interval)):
        if value is None or value < 1:
            raise ValueError('{} must be at least 1, got {}'.format(name, value))
    if lr <= 0 or weight_decay < 0:
        raise ValueError('lr must be > 0 and weight_decay >= 0, got {} and {}'.format(
            lr, weight_decay))
    mapping = KuzushijiUnicodeMapping(data_dir)
    if seed is not None:
        seed_everything(rank_seed(seed, comm))
    predictor = build_classifier(model, len(mapping), width=width, input_size=input_size,
                                 dropout=dropout)
    train_set, val_set, labels = make_datasets(crop_dir, mapping, cv_index=cv_index,
                                               full_data=full_data, input_size=input_size,
                                               augment=augment, val_samples=val_samples,
                                               seed=rank_seed(seed, comm), jitter=jitter,
                                               cache_bytes=page_cache_budget(device, workers))
    train_set, labels = shard_labelled(train_set, labels, comm, seed or 0)
    order_sampler = make_sampler(sampler, labels, per_rank(epoch_size, comm),
                                 min_count=min_count,
                                 random_state=np.random.RandomState(rank_seed(seed, comm)))
    logger.info('%s (%d classes, width %g, input %d): %d train crops (%d a epoch, %s sampler), '
                '%d val crops', model, len(mapping), width, input_size, len(train_set),
                epoch_size, sampler, len(val_set))
    return train_classifier_chain(
        predictor, train_set, val_set, out, order_sampler=order_sampler, device=device,
        epoch=epoch, iterations=iterations, batchsize=batchsize, optimizer=optimizer, lr=lr,
        weight_decay=weight_decay, lr_drop_points=lr_drops, workers=workers, resume=resume,
        snapshot_interval=snapshot_interval, eval_interval=eval_interval,
        log_interval=log_interval, comm=comm, run_record=run_record, class_table=mapping,
        lr_rule=lr_rule)
