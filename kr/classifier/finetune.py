"""Finetuning a trained classifier on trainval crops plus pseudo labels (SPEC section 5)."""

import logging
import os

import chainer
import numpy as np

from kr.classifier.registry import load_class_table
from kr.classifier.registry import load_classifier
from kr.classifier.training import BATCH_SIZE
from kr.classifier.training import train_classifier_chain
from kr.classifier.training import VAL_SAMPLES
from kr.classifier.training import WEIGHT_DECAY
from kr.classifier.transforms import ClassifierTransform
from kr.datasets.char_crop import KuzushijiCharCropDataset
from kr.datasets.char_crop import PSEUDO_LABELS_JSON
from kr.datasets.layout import default_crop_dir
from kr.datasets.sampling import MixtureSampler
from kr.runs import read_run_args
from kr.runs import seed_everything
from kr.training import check_resume
from kr.training.distributed import per_rank
from kr.training.distributed import rank_seed
from kr.training.distributed import shard_labelled

logger = logging.getLogger(__name__)

#: SPEC section 5: lr 0.01, 100 epochs of 20,000 trainval + 10,000 pseudo-label crops,
#: one lr drop (x0.1 at 50%), a snapshot every 10 epochs, light (colour) augmentation.
LR = 0.01
EPOCHS = 100
TRAINVAL_PER_EPOCH = 20000
PSEUDO_PER_EPOCH = 10000
LR_DROP_POINTS = (0.5,)
SNAPSHOT_INTERVAL = 10

#: ``--preset`` settings of script 06 (see :func:`kr.training.resolve_preset`): ``full`` is
#: :func:`finetune_classifier`'s defaults (the SPEC's); ``demo`` is sized like script 04's
#: demo preset.
PRESETS = {
    'full': {},
    # 3 epochs (8 until issue 13) to keep `make demo` within 10 minutes: on the brush-font
    # pages 6 epochs and 3 both moved the demo's F1 from 0.7999 to 0.8001.
    'demo': {'epoch': 3, 'batchsize': 64, 'trainval_per_epoch': 2000, 'pseudo_per_epoch': 1000,
             'snapshot_interval': 3, 'eval_interval': 3, 'log_interval': 10},
}


def pretrained_jitter(pretrained: str) -> str:
    """The crop jitter the run that wrote ``pretrained`` trained with (``'spec'`` for runs
    that do not record one, written before it was a setting)."""
    return read_run_args(pretrained, what='classifier').get('jitter') or 'spec'


def finetune_classifier(pretrained: str, pseudo_labels_dir: str, out: str, data_dir: str = None,
                        crop_dir: str = None, cv_index: int = 0, device=-1,
                        epoch: int = EPOCHS, iterations: int = None,
                        batchsize: int = BATCH_SIZE, lr: float = LR,
                        weight_decay: float = WEIGHT_DECAY,
                        trainval_per_epoch: int = TRAINVAL_PER_EPOCH,
                        pseudo_per_epoch: int = PSEUDO_PER_EPOCH, jitter: str = None,
                        resume: str = None,
                        workers: int = None, seed: int = None,
                        snapshot_interval: int = SNAPSHOT_INTERVAL,
                        eval_interval: int = SNAPSHOT_INTERVAL, val_samples: int = VAL_SAMPLES,
                        log_interval: int = 100, comm=None, lr_rule: str = 'linear',
                        run_record: dict = None):
    """Continue training a classifier on every labelled crop plus the pseudo-label crops.

    An epoch draws ``trainval_per_epoch`` crops of script 02's ``trainval`` index and
    ``pseudo_per_epoch`` crops of script 05's ``pseudo_labels.json`` (light augmentation:
    colour only); the lr drops once, at half of the run. Validation reports accuracy on the
    fold's val crops, which are part of trainval: it shows fit, not generalisation (score
    the test pages with script 07 for that). The class table is the pretrained run's,
    copied into ``out``; the rest of ``out`` is the training assembler's
    (:func:`kr.training.train`).

    Args:
        pretrained: ``model_<epoch>.npz`` of script 04 (``args.json`` beside it).
        pseudo_labels_dir: Output folder of script 05.
        out: Output folder.
        data_dir: Kaggle-layout folder: checked against the pretrained run's class table
            (and its table used for runs that carry none); its crops are the default
            ``crop_dir``.
        crop_dir: Crops of script 02 (default ``<data_dir>-crops``).
        cv_index: Fold whose val crops are reported.
        device, epoch, iterations, batchsize, lr, weight_decay, resume, workers,
        snapshot_interval, eval_interval, log_interval, comm, lr_rule, run_record: As in
            :func:`~kr.classifier.training.train_classifier_chain` (with ``comm``, each rank
            draws its share of both kinds of crops from its shards).
        trainval_per_epoch: Trainval crops per epoch.
        pseudo_per_epoch: Pseudo-label crops per epoch.
        jitter: Training crop jitter (:data:`kr.classifier.transforms.JITTERS`; ``None``:
            the pretrained run's, ``'spec'`` for a run that does not record one). The
            dropout is the pretrained run's too.
        seed: Seed of the sampler, the transforms and the dropout.
        val_samples: Validation crops used (a fixed subset).

    Returns:
        kr.training.TrainingResult

    Raises:
        FileNotFoundError: A missing model, args.json, class table, index or crop.
        ValueError: The data folder's class table differs from the model's.
    """
    if crop_dir is None:
        if data_dir is None:
            raise ValueError('give crop_dir (--crop-dir) or data_dir (--data-dir)')
        crop_dir = default_crop_dir(data_dir)
    check_resume(resume, comm)
    mapping = load_class_table(pretrained, data_dir)
    if seed is not None:
        seed_everything(rank_seed(seed, comm))
    predictor = load_classifier(pretrained)
    if jitter is None:
        jitter = pretrained_jitter(pretrained)
    size = predictor.input_size
    light = ClassifierTransform(size, train=True, augment=True, light=True,
                                seed=rank_seed(seed, comm), jitter=jitter)
    trainval = KuzushijiCharCropDataset(crop_dir, 'trainval', mapping=mapping)
    pseudo = KuzushijiCharCropDataset(
        None, index_path=os.path.join(pseudo_labels_dir, PSEUDO_LABELS_JSON), mapping=mapping)
    val = KuzushijiCharCropDataset(crop_dir, 'val', cv_index, mapping=mapping)
    if len(pseudo) == 0:
        logger.warning('%s holds no pseudo labels: finetuning on trainval crops only',
                       pseudo.index_path)
        pseudo_per_epoch = 0
    trainval_part, _ = shard_labelled(trainval, trainval.labels, comm, seed or 0)
    pseudo_part, _ = shard_labelled(pseudo, pseudo.labels, comm, seed or 0)
    train_set = chainer.datasets.ConcatenatedDataset(
        chainer.datasets.TransformDataset(trainval_part, light),
        chainer.datasets.TransformDataset(pseudo_part, light))
    val = chainer.datasets.TransformDataset(val, ClassifierTransform(size, train=False))
    if val_samples and len(val) > val_samples:
        val = chainer.datasets.SubDataset(val, 0, val_samples,
                                          order=np.random.RandomState(0).permutation(len(val)))
    sampler = MixtureSampler([len(trainval_part), len(pseudo_part)],
                             [per_rank(trainval_per_epoch, comm), per_rank(pseudo_per_epoch, comm)],
                             random_state=np.random.RandomState(rank_seed(seed, comm)))
    logger.info('finetuning %s: %d trainval + %d pseudo-label crops (%d + %d an epoch)',
                pretrained, len(trainval), len(pseudo), trainval_per_epoch, pseudo_per_epoch)
    return train_classifier_chain(
        predictor, train_set, val, out, order_sampler=sampler, device=device, epoch=epoch,
        iterations=iterations, batchsize=batchsize, lr=lr, weight_decay=weight_decay,
        lr_drop_points=LR_DROP_POINTS, workers=workers, resume=resume,
        snapshot_interval=snapshot_interval, eval_interval=eval_interval,
        log_interval=log_interval, comm=comm, run_record=run_record, class_table=mapping,
        lr_rule=lr_rule)
