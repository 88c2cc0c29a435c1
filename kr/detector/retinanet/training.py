"""Training of the RetinaNet detector: train chain, datasets, presets and the run.

:func:`train_detector` is what ``scripts/03_train_detector.py --detector retinanet`` calls:
it builds the datasets (the whole page or random square patches resized to the network
size, :class:`kr.detector.fixed_size.FixedSizeTrainTransform`), the model and its train
chain, and hands them to the training assembler (:func:`kr.training.train`).
"""

import logging

import chainer
import chainer.functions as F

from kr.detector.fixed_size import fixed_size_converter
from kr.detector.fixed_size import make_page_datasets
from kr.detector.fixed_size import MAX_DETECTIONS
from kr.detector.fixed_size import PAGE_INPUT_SIZE
from kr.detector.retinanet.anchors import ANCHOR_RATIOS
from kr.detector.retinanet.anchors import CHARACTER_ANCHOR_SCALE
from kr.detector.retinanet.anchors import MAX_LEVEL
from kr.detector.retinanet.anchors import MIN_LEVEL
from kr.detector.retinanet.anchors import SCALES_PER_OCTAVE
from kr.detector.retinanet.anchors import TF_ANCHOR_SCALE
from kr.detector.retinanet.decode import flatten_level
from kr.detector.retinanet.decode import level_shapes
from kr.detector.retinanet.decode import split_outputs
from kr.detector.retinanet.loss import FOCAL_ALPHA
from kr.detector.retinanet.loss import FOCAL_GAMMA
from kr.detector.retinanet.loss import retinanet_loss
from kr.detector.retinanet.model import HEAD_NORM
from kr.detector.retinanet.model import RetinaNetResNet
from kr.detector.retinanet.targets import assign_targets
from kr.detector.retinanet.targets import NEGATIVE_IOU
from kr.detector.retinanet.targets import POSITIVE_IOU
from kr.runs import seed_everything
from kr.training.distributed import rank_seed
from kr.training.distributed import shard
from kr.training import check_resume
from kr.training.detection import detector_run_settings
from kr.training.detection import train_detector_chain

logger = logging.getLogger(__name__)

#: Reported loss keys (under ``main/``): the total and its two terms.
LOSS_KEYS = ('loss', 'loss/cls', 'loss/box')
#: The TF config trains with momentum 0.9 and a base lr of 0.04 for batches of 64 on TPUs;
#: the linear scaling rule (Goyal et al., arXiv:1706.02677) gives 0.01 for our batch of 16.
BATCHSIZE = 16
LR = 0.01
#: The TF config's L2 regularisation of the convolution weights (0.0004; its gradient is
#: 0.0004 w, Chainer's WeightDecay rate).
WEIGHT_DECAY = 4e-4
#: Gradient-norm clipping: the TF config has a 2,000-step lr warm-up that the assembler's
#: schedule lacks; clipping keeps the first steps from scratch (no pretrained backbone)
#: from blowing up instead.
GRAD_CLIP = 10.0
#: Patch side of the ``patches`` preset as a fraction of the page's shorter side: a
#: 2,400 x 3,900 page gives 1,200 px patches, resized to 512 (x0.43, characters of 60-150 px
#: become 26-64 px: the TF config's own anchors of 32-90 px at P3-P4 fit them).
PATCH_FRACTION = 0.5

#: ``--preset`` settings (see :func:`kr.training.resolve_preset`).
#:
#: * ``full``: :func:`train_detector`'s defaults, for GPUs: ResNet101-FPN P3-P7 on whole
#:   pages at 512 x 512 with the TF config's matching, loss and box coder, anchors sized for
#:   characters (:data:`~kr.detector.retinanet.anchors.CHARACTER_ANCHOR_SCALE`), group norm
#:   in the subnets (:data:`~kr.detector.retinanet.model.HEAD_NORM`) and the 1,200
#:   detection cap.
#: * ``seed000``: the seed's detector as configured, its anchors (scale 4: 32 px and up at
#:   P3) and its batch norm in the subnets included, on whole pages at 512 x 512.
#: * ``patches``: the seed's own suggestion, square patches of half the page's shorter side
#:   at 512 x 512 (larger and fewer characters), with the TF anchors, which fit them;
#:   detections are merged back onto the page.
#: * ``demo``: CPU-sized, an eighth-width ResNet50 on half-page patches at 256 px (the
#:   characters and anchors of ``patches`` at half the scale), batch 8, Adam: 200 steps
#:   train about as long as CenterNet's demo (``benchmarks/retinanet_speed.py``) and reach
#:   a val mAP of 0.9 on the demo pages.
PRESETS = {
    'full': {},
    'seed000': dict(anchor_scale=TF_ANCHOR_SCALE, head_norm='batch'),
    'patches': dict(patch_fraction=PATCH_FRACTION, anchor_scale=TF_ANCHOR_SCALE),
    'demo': dict(depth=50, width=0.125, input_size=256, patch_fraction=PATCH_FRACTION,
                 batchsize=8, iterations=200, optimizer='adam', lr=3e-3, weight_decay=1e-5,
                 snapshot_interval=100, eval_interval=200, log_interval=10, val_pages=12),
}


class RetinaNetTrainChain(chainer.Chain):
    """Wraps a RetinaNet to assign targets and compute and report its loss.

    Reports ``loss`` (the sum) and ``loss/cls``, ``loss/box`` (the terms of
    :func:`kr.detector.retinanet.loss.retinanet_loss`).

    Args:
        model: A :class:`~kr.detector.retinanet.model.RetinaNetResNet` (or anything with
            its call, ``n_fg_class`` and ``anchors(shapes, xp)``).
        positive_iou: IoU from which an anchor is positive.
        negative_iou: IoU under which an anchor is background.
        alpha: Focal loss weight of the positives.
        gamma: Focal loss exponent.

    Call:
        ``x`` ``(N, 3, S, S)`` normalised images and ``bboxes``, a list of ``(R_i, 4)``
        xyxy boxes in their pixels (:func:`kr.detector.fixed_size.fixed_size_converter`).

    Returns:
        The scalar loss Variable.
    """

    def __init__(self, model, positive_iou: float = POSITIVE_IOU,
                 negative_iou: float = NEGATIVE_IOU, alpha: float = FOCAL_ALPHA,
                 gamma: float = FOCAL_GAMMA):
        super().__init__()
        if negative_iou > positive_iou:
            raise ValueError('negative_iou {} must not exceed positive_iou {}'.format(
                negative_iou, positive_iou))
        self.positive_iou = positive_iou
        self.negative_iou = negative_iou
        self.alpha = alpha
        self.gamma = gamma
        with self.init_scope():
            self.model = model

    def targets(self, shapes, bboxes):
        """``(labels (N, R), deltas (N, R, 4))`` of a batch whose levels have ``shapes``."""
        xp = self.xp
        anchors = xp.concatenate(self.model.anchors(shapes, xp))
        grids = self.model.anchor_grids(shapes)
        labels, deltas = zip(*[assign_targets(anchors, b, None, self.positive_iou,
                                              self.negative_iou, grids=grids)
                               for b in bboxes])
        return xp.stack(labels), xp.stack(deltas)

    def forward(self, x, bboxes):
        outputs = self.model(x)
        cls_outputs, box_outputs = split_outputs(outputs)
        labels, deltas = self.targets(level_shapes(outputs), bboxes)
        cls = F.concat([flatten_level(y, self.model.n_fg_class) for y in cls_outputs], axis=1)
        box = F.concat([flatten_level(y, 4) for y in box_outputs], axis=1)
        terms = retinanet_loss(cls, box, labels, deltas, self.alpha, self.gamma)
        loss = terms['cls'] + terms['box']
        report = {'loss': loss}
        report.update({'loss/' + k: v for k, v in terms.items()})
        chainer.report(report, self)
        return loss


def train_detector(data_dir: str, out: str, split_dir: str = None, cv_index: int = 0,
                   full_data: bool = False, device='-1', depth: int = 101,
                   width: float = 1.0, input_size: int = PAGE_INPUT_SIZE,
                   patch_fraction: float = None,
                   anchor_scale: float = CHARACTER_ANCHOR_SCALE,
                   scales_per_octave: int = SCALES_PER_OCTAVE,
                   anchor_ratios: str = ANCHOR_RATIOS, min_level: int = MIN_LEVEL,
                   max_level: int = MAX_LEVEL, head_norm: str = HEAD_NORM,
                   positive_iou: float = POSITIVE_IOU, negative_iou: float = NEGATIVE_IOU,
                   max_detections: int = MAX_DETECTIONS, batchsize: int = BATCHSIZE,
                   epoch: int = 100, iterations: int = None, optimizer: str = 'nesterov',
                   lr: float = LR, weight_decay: float = WEIGHT_DECAY,
                   grad_clip: float = GRAD_CLIP, snapshot_interval: int = 10,
                   eval_interval: int = 10, log_interval: int = 100, val_pages: int = 160,
                   workers: int = None, resume: str = None, seed: int = None,
                   progress_interval: int = 10, comm=None, lr_rule: str = 'linear',
                   run_record: dict = None):
    """Train ``RetinaNetResNet`` on a Kaggle-layout folder.

    The defaults are the ``full`` preset (for GPUs; see :data:`PRESETS`): NesterovAG with
    weight decay and gradient clipping, 100 epochs of batch 16 at 512 x 512, lr x0.1 at 50%
    and 75%, snapshots every 10 epochs, validation loss and VOC mAP
    (``validation/main/map``, on whole val pages detected as at inference). What is
    written to ``out`` is the training assembler's (:func:`kr.training.train`).

    Args:
        data_dir: Kaggle-layout folder.
        out: Output folder.
        split_dir: Fold CSVs (default ``<data_dir>-gsplit``).
        cv_index: Fold.
        full_data: Train on all of train.csv.
        device: Chainer device specifier (``-1``, ``0``, ``@cupy:0``...).
        depth: ResNet depth of the backbone, 50 or 101 (the seed: 101).
        width: Channel multiplier of the network (1.0: standard widths).
        input_size: Side of the square network input in pixels (a multiple of 32).
        patch_fraction: Train and detect on square patches of this fraction of the page's
            shorter side (none: the whole page resized, as the seed).
        anchor_scale: Anchor side over its level's stride (the TF config: 4).
        scales_per_octave: Anchor sides per pyramid level.
        anchor_ratios: Anchor aspect ratios h / w, comma-separated.
        min_level: Finest pyramid level (3: P3, stride 8; 2 adds P2).
        max_level: Coarsest pyramid level (5 to 7).
        head_norm: Normalisation in the subnets: batch, group or none.
        positive_iou: IoU from which an anchor is matched to a box.
        negative_iou: IoU under which an anchor is background (between the two: ignored).
        max_detections: Most detections per page.
        batchsize: Images (pages or patches) per iteration.
        epoch: Length of training in epochs (when ``iterations`` is None).
        iterations: Length of training in iterations.
        optimizer: Key of :data:`kr.training.OPTIMIZERS`.
        lr: Learning rate (Adam's alpha).
        weight_decay: Weight decay rate.
        grad_clip: Gradient-norm clipping threshold.
        snapshot_interval: Trainer and model snapshots every this many epochs (iterations
            when ``iterations`` is given), and at the end.
        eval_interval: Validation every this many epochs (likewise), and at the end.
        log_interval: Log and plot every this many iterations.
        val_pages: Number of val pages used for validation.
        workers: Data-loading processes (0: load in the main process; ``None``: 0 on the
            CPU, 8 on a GPU).
        resume: Trainer snapshot to resume from.
        seed: Seed of the patch positions, the initial weights and the order of the pages.
        progress_interval: Progress bar update interval in iterations.
        comm: A ChainerMN communicator (``None``: one process): each rank trains on its
            shard of the pages with its own patch stream; ``batchsize`` is per rank.
        lr_rule: With ``comm``, how the lr grows with the global batch
            (:data:`kr.training.distributed.LR_RULES`).
        run_record: Written as ``out/args.json`` when the run starts (inputs checked).

    Returns:
        kr.training.TrainingResult: ``model`` is the trained RetinaNetResNet, on the CPU.

    Raises:
        ValueError: Bad settings, unreadable images.
        FileNotFoundError: Missing data, split files or snapshot.
        kr.training.TrainingDiverged: The loss became NaN or infinite (the last good
            snapshot is kept).
    """
    spec, schedule = detector_run_settings(batchsize, epoch, iterations, optimizer, lr,
                                           weight_decay, grad_clip, snapshot_interval,
                                           eval_interval, log_interval)
    if seed is not None:
        seed_everything(rank_seed(seed, comm))
    # built before the data is read, so that a bad setting is named first
    model = RetinaNetResNet(n_fg_class=1, depth=depth, width=width, input_size=input_size,
                            patch_fraction=patch_fraction, anchor_scale=anchor_scale,
                            scales_per_octave=scales_per_octave, anchor_ratios=anchor_ratios,
                            min_level=min_level, max_level=max_level, head_norm=head_norm,
                            max_detections=max_detections)
    chain = RetinaNetTrainChain(model, positive_iou, negative_iou)
    check_resume(resume, comm)

    train_set, val_loss, val_map = make_page_datasets(data_dir, split_dir, cv_index, full_data,
                                                 input_size, patch_fraction, val_pages,
                                                 rank_seed(seed, comm))
    logger.info('%d training pages, %d validation pages', len(train_set),
                0 if val_loss is None else len(val_loss))
    train_set = shard(train_set, comm, train=True, seed=seed or 0)
    return train_detector_chain(chain, model, train_set, val_loss, val_map, out, spec, schedule,
                                batchsize, fixed_size_converter, LOSS_KEYS, comm=comm,
                                device=device, workers=workers, resume=resume,
                                progress_interval=progress_interval,
                                run_record=run_record, lr_rule=lr_rule)
