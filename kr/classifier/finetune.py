"""Finetuning a trained classifier on trainval crops plus pseudo labels (SPEC section 5)."""

import json
import logging
import os

import chainer
import numpy as np

from kr.classifier.registry import load_classifier
from kr.classifier.training import run_classifier_training
from kr.classifier.transforms import ClassifierTransform
from kr.cli import default_crop_dir
from kr.datasets.char_crop import KuzushijiCharCropDataset
from kr.datasets.sampling import MixtureSampler
from kr.datasets.unicode_mapping import KuzushijiUnicodeMapping
from kr.pseudo_labels import PSEUDO_LABELS_JSON

logger = logging.getLogger(__name__)

#: SPEC section 5: lr 0.01, 100 epochs of 20,000 trainval + 10,000 pseudo-label crops,
#: one lr drop (x0.1 at 50%), a snapshot every 10 epochs, light (colour) augmentation.
LR = 0.01
EPOCHS = 100
TRAINVAL_PER_EPOCH = 20000
PSEUDO_PER_EPOCH = 10000
LR_DROP_POINTS = (0.5,)
SNAPSHOT_INTERVAL = 10
#: Keys of a classifier run's args.json that rebuild its architecture.
ARCHITECTURE_KEYS = ('model', 'n_classes', 'width', 'input_size')

#: ``--preset`` settings of script 06; ``demo`` is sized like script 04's demo preset.
PRESETS = {
    'full': {'epoch': EPOCHS, 'batchsize': 192, 'lr': LR, 'trainval_per_epoch':
             TRAINVAL_PER_EPOCH, 'pseudo_per_epoch': PSEUDO_PER_EPOCH,
             'snapshot_interval': SNAPSHOT_INTERVAL, 'eval_interval': SNAPSHOT_INTERVAL,
             'log_interval': 100},
    'demo': {'epoch': 8, 'batchsize': 64, 'lr': LR, 'trainval_per_epoch': 2000,
             'pseudo_per_epoch': 1000, 'snapshot_interval': 4, 'eval_interval': 4,
             'log_interval': 10},
}


def pretrained_architecture(pretrained: str) -> dict:
    """``model``, ``n_classes``, ``width`` and ``input_size`` of the run that wrote ``pretrained``.

    Raises:
        FileNotFoundError: No ``args.json`` beside the weights.
    """
    args_path = os.path.join(os.path.dirname(os.path.abspath(pretrained)), 'args.json')
    if not os.path.isfile(args_path):
        raise FileNotFoundError('{} not found: the classifier run that wrote {} records its '
                                'architecture there'.format(args_path, pretrained))
    with open(args_path, encoding='utf-8') as f:
        args = json.load(f)
    return {k: args.get(k) for k in ARCHITECTURE_KEYS}


def finetune_classifier(pretrained: str, pseudo_labels_dir: str, data_dir: str, out: str,
                        crop_dir: str = None, cv_index: int = 0, device=-1,
                        epoch: int = EPOCHS, iterations: int = None, batchsize: int = 192,
                        lr: float = LR, weight_decay: float = 1e-4,
                        trainval_per_epoch: int = TRAINVAL_PER_EPOCH,
                        pseudo_per_epoch: int = PSEUDO_PER_EPOCH, resume: str = None,
                        loaderjob: int = None, seed: int = None,
                        snapshot_interval: int = SNAPSHOT_INTERVAL,
                        eval_interval: int = SNAPSHOT_INTERVAL, val_samples: int = 20000,
                        log_interval: int = 100) -> dict:
    """Continue training a classifier on every labelled crop plus the pseudo-label crops.

    An epoch draws ``trainval_per_epoch`` crops of script 02's ``trainval`` index and
    ``pseudo_per_epoch`` crops of script 05's ``pseudo_labels.json`` (light augmentation:
    colour only); the lr drops once, at half of the run. Validation reports accuracy on the
    fold's val crops, which are part of trainval: it shows fit, not generalisation (score
    the test pages with script 07 for that). What is written to ``out`` is described in
    :func:`kr.classifier.training.run_classifier_training`.

    Args:
        pretrained: ``model_<epoch>.npz`` of script 04 (``args.json`` beside it).
        pseudo_labels_dir: Output folder of script 05.
        data_dir: Kaggle-layout folder (the class table).
        out: Output folder (must exist).
        crop_dir: Crops of script 02 (default ``<data_dir>-crops``).
        cv_index: Fold whose val crops are reported.
        device, epoch, iterations, batchsize, lr, weight_decay, resume, loaderjob,
        snapshot_interval, eval_interval, log_interval: As in
            :func:`~kr.classifier.training.run_classifier_training`.
        trainval_per_epoch: Trainval crops per epoch.
        pseudo_per_epoch: Pseudo-label crops per epoch.
        seed: Seed of the sampler and the transforms.
        val_samples: Validation crops used (a fixed subset).

    Raises:
        FileNotFoundError: A missing model, args.json, index or crop.
        ValueError: The class table does not match the model.
    """
    crop_dir = crop_dir or default_crop_dir(data_dir)
    mapping = KuzushijiUnicodeMapping(data_dir)
    arch = pretrained_architecture(pretrained)
    if arch['n_classes'] is not None and int(arch['n_classes']) != len(mapping):
        raise ValueError('{} has {} classes but {} lists {}'.format(
            pretrained, arch['n_classes'], mapping.path, len(mapping)))
    predictor = load_classifier(pretrained)
    size = predictor.input_size
    light = ClassifierTransform(size, train=True, augment=True, light=True, seed=seed)
    trainval = KuzushijiCharCropDataset(crop_dir, 'trainval', mapping=mapping)
    pseudo = KuzushijiCharCropDataset(
        None, index_path=os.path.join(pseudo_labels_dir, PSEUDO_LABELS_JSON), mapping=mapping)
    val = KuzushijiCharCropDataset(crop_dir, 'val', cv_index, mapping=mapping)
    if len(pseudo) == 0:
        logger.warning('%s holds no pseudo labels: finetuning on trainval crops only',
                       pseudo.index_path)
        pseudo_per_epoch = 0
    train = chainer.datasets.ConcatenatedDataset(
        chainer.datasets.TransformDataset(trainval, light),
        chainer.datasets.TransformDataset(pseudo, light))
    val = chainer.datasets.TransformDataset(val, ClassifierTransform(size, train=False))
    if val_samples and len(val) > val_samples:
        val = chainer.datasets.SubDataset(val, 0, val_samples,
                                          order=np.random.RandomState(0).permutation(len(val)))
    sampler = MixtureSampler([len(trainval), len(pseudo)], [trainval_per_epoch, pseudo_per_epoch],
                             random_state=np.random.RandomState(seed))
    logger.info('finetuning %s: %d trainval + %d pseudo-label crops (%d + %d an epoch)',
                pretrained, len(trainval), len(pseudo), trainval_per_epoch, pseudo_per_epoch)
    return run_classifier_training(
        predictor, train, val, out, order_sampler=sampler, device=device, epoch=epoch,
        iterations=iterations, batchsize=batchsize, lr=lr, weight_decay=weight_decay,
        lr_drop_points=LR_DROP_POINTS, resume=resume, loaderjob=loaderjob,
        snapshot_interval=snapshot_interval, eval_interval=eval_interval,
        log_interval=log_interval)
