"""Training of the CenterNet detector: train chain, converter, datasets and the run.

:func:`train_detector` is what ``scripts/03_train_detector.py`` calls: it builds the
datasets, the model and its train chain, and hands them to the training assembler
(:func:`kr.training.train`), which owns the rest.
"""

import logging

import chainer
import numpy as np
from chainer.datasets import TransformDataset

from kr.datasets.kuzushiji import KuzushijiPageDataset
from kr.detector.centernet.decode import n_output_channels
from kr.detector.centernet.heatmap import MIN_SIGMA
from kr.detector.centernet.loss import centernet_loss
from kr.detector.centernet.model import Res18UnetCenterNet
from kr.detector.centernet.transforms import CenterCropResize
from kr.detector.centernet.transforms import CenterNetTrainTransform
from kr.detector.centernet.transforms import ColorAugmentation
from kr.detector.centernet.transforms import CropOnly
from kr.detector.centernet.transforms import RandomCropResize
from kr.detector.tta import ScaledDetector
from kr.runs import seed_everything
from kr.training.distributed import rank_seed
from kr.training.distributed import shard
from kr.training import check_resume
from kr.training.assembler import page_cache_budget
from kr.training.detection import detector_run_settings
from kr.training.detection import train_detector_chain

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

#: ``--preset`` settings (see :func:`kr.training.resolve_preset`). ``full`` is
#: :func:`train_detector`'s defaults, the original's schedule (SPEC section 3). ``demo`` is a
#: CPU-sized run that learns the synthetic pages in a few minutes (a quarter-width net,
#: 192 px crops, Adam: NesterovAG reached mAP 0.23 in 400 iterations at the best lr tried).
#: 700 iterations since the pages are in brush and cursive hands with unlabelled ruby: 400
#: left the validation mAP at 0.69 (flat over its last 100 iterations as the lr decays),
#: and on a real page split large kanji in two. 800 since the training no longer redraws
#: its figures every log interval nor decodes a page for every crop (the run took 5.4
#: instead of 6.9 minutes): 840 gave validation mAP 0.884 instead of 0.834, demo F1 before
#: finetuning 0.823 instead of 0.812, and detection F1 0.855 instead of 0.821 on the real
#: page 100241706_00004_2.
PRESETS = {
    'full': {},
    # min_sigma 1.5 (issue 13; the original's sigma falls to 0.68 cells for flat and thin
    # characters): on the demo's 20 brush-font test pages, detection F1 0.929 -> 0.942 and
    # 0.938 (seeds 0 and 1; missed long thin kana 61 -> 24 of 119), demo F1 before
    # finetuning 0.800 -> 0.805 and 0.806; floors of 1.0 and 2.0 gave 0.931 and 0.932. On
    # the real page 100241706_00004_2 the two seeds gave 0.875 and 0.797 (0.845 without).
    'demo': dict(width=0.25, crop_size=192, batchsize=8, iterations=800, optimizer='adam',
                 lr=2e-3, weight_decay=1e-5, snapshot_interval=200, eval_interval=200,
                 log_interval=10, val_pages=24, min_sigma=1.5),
}


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
                  seed: int = None, min_sigma: float = MIN_SIGMA, page_cache_bytes: int = 0):
    """Training and validation datasets of the detector.

    Args:
        data_dir: Kaggle-layout folder.
        split_dir: Fold CSVs of scripts/01_split_train_val.py (default ``<data_dir>-gsplit``).
        cv_index: Fold.
        full_data: Train on all of train.csv (``trainval``) instead of the fold's train part.
        crop_size: Side of the training crops in pixels.
        val_pages: Validate on the first this many pages of the fold's val part.
        seed: Seed of the augmentation (``None``: fresh entropy).
        min_sigma: Floor of the heatmap Gaussians' sigma in cells.
        page_cache_bytes: Decoded pages kept in memory by the training pages and by the
            validation pages, each (``cache_bytes`` of :class:`KuzushijiPageDataset`).

    Returns:
        tuple ``(train, val_loss, val_map)``: ``train`` and ``val_loss`` give
        ``(x, heatmap, size, offset, mask)`` (random crops with colour augmentation; centre
        crops at the mean scale), ``val_map`` gives dicts ``image`` / ``bboxes`` of the same
        centre crops. The validation sets are ``None`` when the fold has no val pages.

    Raises:
        FileNotFoundError: Missing data or split files (naming the script to run).
    """
    pages = KuzushijiPageDataset(data_dir, 'trainval' if full_data else 'train', cv_index,
                                 split_dir, cache_bytes=page_cache_bytes)
    if len(pages) == 0:
        raise ValueError('no training pages in {}'.format(data_dir))
    train = TransformDataset(pages, CenterNetTrainTransform(
        RandomCropResize(crop_size, seed=seed), ColorAugmentation(seed=seed),
        min_sigma=min_sigma))
    val_pages_ds = KuzushijiPageDataset(data_dir, 'val', cv_index, split_dir,
                                        cache_bytes=page_cache_bytes)
    n_val = min(len(val_pages_ds), val_pages)
    if n_val == 0:
        return train, None, None
    val = chainer.datasets.SubDataset(val_pages_ds, 0, n_val)
    crop = CenterCropResize(crop_size)
    return train, TransformDataset(val, CenterNetTrainTransform(crop, min_sigma=min_sigma)), \
        TransformDataset(val, CropOnly(crop))


def train_detector(data_dir: str, out: str, split_dir: str = None, cv_index: int = 0,
                   full_data: bool = False, device='-1', width: float = 1.0,
                   crop_size: int = 416, batchsize: int = ORIGINAL_BATCHSIZE,
                   epoch: int = 700, iterations: int = None, optimizer: str = 'nesterov',
                   lr: float = LR, weight_decay: float = WEIGHT_DECAY,
                   grad_clip: float = GRAD_CLIP, min_sigma: float = MIN_SIGMA,
                   snapshot_interval: int = 10,
                   eval_interval: int = 10, log_interval: int = 100, val_pages: int = 160,
                   workers: int = None, resume: str = None, seed: int = None,
                   progress_interval: int = 10, comm=None, lr_rule: str = 'linear',
                   run_record: dict = None):
    """Train ``Res18UnetCenterNet`` on a Kaggle-layout folder.

    The defaults are the original's schedule (the ``full`` preset, SPEC section 3): NesterovAG
    with weight decay and gradient clipping, 700 epochs of batch 16 on 416 px crops, lr
    x0.1 at 50% and 75%, model snapshots every 10 epochs, validation loss and VOC mAP
    (``validation/main/map``) on 160 val pages. What is written to ``out`` (log, plots,
    snapshots, ``model_final.npz``) is the training assembler's (:func:`kr.training.train`).

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
        optimizer: Key of :data:`kr.training.OPTIMIZERS`.
        lr: Learning rate (Adam's alpha).
        weight_decay: Weight decay rate.
        grad_clip: Gradient-norm clipping threshold.
        min_sigma: Floor of the heatmap Gaussians' sigma, in output cells. The original's
            sigma (SPEC section 3) falls below 1 cell for flat and thin characters (0.68 for
            a box of 6 x 1.5 cells), whose peaks a short run then hardly learns; the demo
            preset raises it to 1.5.
        snapshot_interval: Trainer and model snapshots every this many epochs (iterations
            when ``iterations`` is given), and at the end.
        eval_interval: Validation every this many epochs (likewise), and at the end.
        log_interval: Log and plot every this many iterations.
        val_pages: Number of val pages used for validation.
        workers: Data-loading processes (0: load in the main process; ``None``: 0 on the
            CPU, 8 on a GPU). Loading in the training process keeps up to
            :data:`kr.training.assembler.PAGE_CACHE_BYTES` of decoded pages in memory
            (:func:`kr.training.assembler.page_cache_budget`).
        resume: Trainer snapshot to resume from.
        seed: Seed of the augmentation, the initial weights and the order of the crops.
        progress_interval: Progress bar update interval in iterations.
        comm: A ChainerMN communicator (``None``: one process): each rank trains on its
            shard of the pages with its own augmentation stream; ``batchsize`` is per rank.
        lr_rule: With ``comm``, how the lr grows with the global batch
            (:data:`kr.training.distributed.LR_RULES`).
        run_record: Written as ``out/args.json`` when the run starts (inputs checked).

    Returns:
        kr.training.TrainingResult: ``model`` is the trained Res18UnetCenterNet, on the CPU.

    Raises:
        ValueError: Bad settings, unreadable images.
        FileNotFoundError: Missing data, split files or snapshot.
        kr.training.TrainingDiverged: The loss became NaN or infinite (the last good
            snapshot is kept).
    """
    if crop_size % 32 or crop_size <= 0:
        raise ValueError('--crop-size must be a positive multiple of 32, got {}'.format(
            crop_size))
    if min_sigma is None or not min_sigma > 0:
        raise ValueError('--min-sigma must be > 0 (cells), got {}'.format(min_sigma))
    spec, schedule = detector_run_settings(batchsize, epoch, iterations, optimizer, lr,
                                           weight_decay, grad_clip, snapshot_interval,
                                           eval_interval, log_interval)
    check_resume(resume, comm)

    train_set, val_loss, val_map = make_datasets(
        data_dir, split_dir, cv_index, full_data, crop_size, val_pages, rank_seed(seed, comm),
        min_sigma=min_sigma, page_cache_bytes=page_cache_budget(device, workers))
    logger.info('%d training pages, %d validation pages', len(train_set),
                0 if val_loss is None else len(val_loss))
    train_set = shard(train_set, comm, train=True, seed=seed or 0)
    if seed is not None:
        seed_everything(rank_seed(seed, comm))
    model = Res18UnetCenterNet(n_fg_class=1, width=width)
    chain = CenterNetTrainChain(model)
    return train_detector_chain(chain, model, train_set, val_loss, val_map, out, spec, schedule,
                                batchsize, centernet_converter, LOSS_KEYS, map_detector=ScaledDetector(model, None),
                                comm=comm,
                                device=device, workers=workers, resume=resume,
                                progress_interval=progress_interval,
                                run_record=run_record, lr_rule=lr_rule)
