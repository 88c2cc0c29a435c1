"""Training of the Faster R-CNN detector: train chain, datasets, presets and the run.

:func:`train_detector` is what ``scripts/03_train_detector.py --detector faster_rcnn``
calls: it builds the fixed-size datasets (:mod:`kr.detector.fixed_size`: the whole page
resized to 512 x 512 as the seed, or random square patches), the model and its train
chain, and hands them to the training assembler (:func:`kr.training.train`).

Not the TF config (SPEC section 11), and why: there are no COCO-pretrained weights here
(nothing is downloaded), so the network trains from scratch, with batch normalisation in
training mode, and the optimisation is ours (TF fine-tunes with momentum 0.9 at lr 3e-4,
batch 1); no random horizontal flip (a mirrored character is another glyph, or none);
the TF proto's 64 RoIs per image become 512 and its 300 proposals and 300 detections
2,000 and 1,200 (a page has up to 614 characters).
"""

import logging

import chainer

from kr.detector.faster_rcnn.loss import head_loss
from kr.detector.faster_rcnn.loss import rpn_loss
from kr.detector.faster_rcnn.model import ANCHOR_RATIOS
from kr.detector.faster_rcnn.model import ANCHOR_SIZES
from kr.detector.faster_rcnn.model import FasterRCNNFPNResNet
from kr.detector.faster_rcnn.targets import anchor_targets
from kr.detector.faster_rcnn.targets import POST_NMS_TRAIN
from kr.detector.faster_rcnn.targets import PRE_NMS_TRAIN
from kr.detector.faster_rcnn.targets import proposal_targets
from kr.detector.faster_rcnn.targets import ROI_BATCHSIZE
from kr.detector.faster_rcnn.targets import ROI_POSITIVE_FRACTION
from kr.detector.faster_rcnn.targets import RPN_BATCHSIZE
from kr.detector.faster_rcnn.targets import RPN_POSITIVE_FRACTION
from kr.detector.fixed_size import check_input_size
from kr.detector.fixed_size import fixed_size_converter
from kr.detector.fixed_size import make_page_datasets
from kr.detector.fixed_size import PAGE_INPUT_SIZE
from kr.runs import seed_everything
from kr.training import check_resume
from kr.training.detection import detector_run_settings
from kr.training.detection import train_detector_chain
from kr.training.distributed import rank_seed
from kr.training.distributed import shard

logger = logging.getLogger(__name__)

#: Reported loss keys (under ``main/``): the total and its four terms.
LOSS_KEYS = ('loss', 'loss/rpn_cls', 'loss/rpn_loc', 'loss/head_cls', 'loss/head_loc')
#: Default optimisation (the ``full`` preset, for a GPU; not tuned: no GPU run was made):
#: NesterovAG (momentum 0.9, as TF's momentum optimizer) at Detectron's lr 0.02 for 16
#: images scaled linearly to 4, its weight decay 1e-4, and the gradient norm clipped at 10
#: (a guard for training from scratch).
BATCHSIZE = 4
LR = 0.02 * BATCHSIZE / 16
WEIGHT_DECAY = 1e-4
GRAD_CLIP = 10.0
#: Default length: TF's 200,000 steps of batch 1 over the competition's 3,605 train pages,
#: about 55 epochs, rounded up.
EPOCHS = 60

#: ``--preset`` settings (see :func:`kr.training.resolve_preset`). ``full`` is
#: :func:`train_detector`'s defaults: ResNet101-FPN on the whole page at 512 x 512 with the
#: caps raised (for GPUs). ``seed000`` is the seed's input written out (the whole page
#: resized to 512 x 512, ResNet101), so that it stays so if the defaults move. ``patches``
#: is the seed's own suggestion: square patches of half the page's shorter side (a
#: 2,400 x 3,900 page gives 1,200 px patches, its 60-150 px characters become 26-64 px at
#: 512), merged back. ``demo`` is CPU-sized: a quarter-width ResNet50 on whole pages at
#: 384 x 384 (the demo pages' characters are 7-13 px high there), 150 iterations of 2 pages
#: (about 1.4 s of one core each), Adam, and half the sampled RoIs characters (at a quarter
#: the box head still predicted the prior after 90 iterations of the overfit test). On the
#: demo data (fold 0, seed 0) it reached validation/main/map 0.373 on 12 val pages in
#: 246 s of one core (user + system, evaluations included; 0.138 after 75 iterations).
PRESETS = {
    'full': {},
    'seed000': dict(depth=101, input_size=512, patch_fraction=None),
    'patches': dict(patch_fraction=0.5),
    'demo': dict(depth=50, width=0.25, input_size=384, batchsize=2, iterations=150,
                 optimizer='adam', lr=2e-3, weight_decay=1e-5, roi_batchsize=128,
                 roi_positive_fraction=0.5,
                 snapshot_interval=75, eval_interval=75, log_interval=10, val_pages=12),
}


class FasterRCNNTrainChain(chainer.Chain):
    """Wraps a :class:`~kr.detector.faster_rcnn.model.FasterRCNNFPNResNet` to compute and
    report its loss.

    Per image: anchor targets (:func:`~kr.detector.faster_rcnn.targets.anchor_targets`)
    for the RPN loss, proposals from the RPN's outputs (no gradient flows through them, as
    in the approximate joint training of the paper), sampled RoIs with their targets
    (:func:`~kr.detector.faster_rcnn.targets.proposal_targets`) for the box head's loss.
    Reports ``loss`` (the sum) and ``loss/rpn_cls``, ``loss/rpn_loc``, ``loss/head_cls``,
    ``loss/head_loc``.

    Args:
        model: The detector.
        rpn_batchsize: Anchors sampled per image.
        rpn_positive_fraction: Largest positive share of them.
        roi_batchsize: RoIs sampled per image.
        roi_positive_fraction: Largest character share of them.
        pre_nms: Proposals ranked before the RPN's NMS.
        post_nms: Proposals kept after it (the RoIs are sampled from these and the boxes).

    Call:
        ``x`` ``(N, 3, S, S)`` normalised images and a list of ``N`` ``(R_i, 4)`` boxes
        in their pixels (:func:`~kr.detector.fixed_size.fixed_size_converter`).

    Returns:
        The scalar loss Variable.
    """

    def __init__(self, model, rpn_batchsize: int = RPN_BATCHSIZE,
                 rpn_positive_fraction: float = RPN_POSITIVE_FRACTION,
                 roi_batchsize: int = ROI_BATCHSIZE,
                 roi_positive_fraction: float = ROI_POSITIVE_FRACTION,
                 pre_nms: int = PRE_NMS_TRAIN, post_nms: int = POST_NMS_TRAIN):
        super().__init__()
        self.pre_nms = pre_nms
        self.post_nms = post_nms
        self.rpn_batchsize = rpn_batchsize
        self.rpn_positive_fraction = rpn_positive_fraction
        self.roi_batchsize = roi_batchsize
        self.roi_positive_fraction = roi_positive_fraction
        with self.init_scope():
            self.model = model

    def forward(self, x, bboxes):
        xp = self.xp
        size = x.shape[2]
        levels, scores, locs = self.model(x)
        anchors = self.model.anchors(size)
        grid = self.model.anchor_levels(size)
        labels, targets = zip(*[
            anchor_targets(anchors, grid, b, batchsize=self.rpn_batchsize,
                           positive_fraction=self.rpn_positive_fraction) for b in bboxes])
        rpn_cls, rpn_loc = rpn_loss(scores, locs, xp.stack(labels), xp.stack(targets))
        proposals = self.model.propose(scores.array, locs.array, size, self.pre_nms,
                                       self.post_nms)
        rois, roi_labels, roi_targets = zip(*[
            proposal_targets(p, b, batchsize=self.roi_batchsize,
                             positive_fraction=self.roi_positive_fraction)
            for p, b in zip(proposals, bboxes)])
        indices = xp.concatenate([xp.full(len(r), i, dtype='i') for i, r in enumerate(rois)])
        cls, loc = self.model.head(levels, xp.concatenate(rois), indices)
        head_cls, head_loc = head_loss(cls, loc, xp.concatenate(roi_labels),
                                       xp.concatenate(roi_targets))
        loss = rpn_cls + rpn_loc + head_cls + head_loc
        chainer.report({'loss': loss, 'loss/rpn_cls': rpn_cls, 'loss/rpn_loc': rpn_loc,
                        'loss/head_cls': head_cls, 'loss/head_loc': head_loc}, self)
        return loss


def train_detector(data_dir: str, out: str, split_dir: str = None, cv_index: int = 0,
                   full_data: bool = False, device='-1', depth: int = 101,
                   width: float = 1.0, input_size: int = PAGE_INPUT_SIZE,
                   patch_fraction: float = None, anchor_sizes: str = ANCHOR_SIZES,
                   anchor_ratios: str = ANCHOR_RATIOS, rpn_batchsize: int = RPN_BATCHSIZE,
                   roi_batchsize: int = ROI_BATCHSIZE,
                   roi_positive_fraction: float = ROI_POSITIVE_FRACTION,
                   batchsize: int = BATCHSIZE,
                   epoch: int = EPOCHS, iterations: int = None, optimizer: str = 'nesterov',
                   lr: float = LR, weight_decay: float = WEIGHT_DECAY,
                   grad_clip: float = GRAD_CLIP, snapshot_interval: int = 5,
                   eval_interval: int = 5, log_interval: int = 100, val_pages: int = 160,
                   workers: int = None, resume: str = None, seed: int = None,
                   progress_interval: int = 10, comm=None, lr_rule: str = 'linear',
                   run_record: dict = None):
    """Train ``FasterRCNNFPNResNet`` on a Kaggle-layout folder.

    The defaults are the ``full`` preset (for a GPU): ResNet101-FPN on whole pages resized
    to 512 x 512, 60 epochs of batch 4, NesterovAG, lr x0.1 at 50% and 75%, snapshots and
    validation (loss, and VOC mAP ``validation/main/map`` on whole val pages) every 5
    epochs. What is written to ``out`` (log, plots, snapshots, ``model_final.npz``) is the
    training assembler's (:func:`kr.training.train`).

    Args:
        data_dir: Kaggle-layout folder.
        out: Output folder.
        split_dir: Fold CSVs (default ``<data_dir>-gsplit``).
        cv_index: Fold.
        full_data: Train on all of train.csv.
        device: Chainer device specifier (``-1``, ``0``, ``@cupy:0``...).
        depth: ResNet depth of the backbone (101 as the seed's config, or 50).
        width: Channel multiplier of the network.
        input_size: Side of the square network input (a multiple of 32; the seed's 512).
        patch_fraction: Train and detect on square patches of this fraction of the page's
            shorter side (none: the whole page resized, as the seed).
        anchor_sizes: Anchor side (input pixels) of each pyramid level P2-P5, four
            comma-separated numbers.
        anchor_ratios: Anchor aspect ratios h / w, comma-separated.
        rpn_batchsize: Anchors sampled per image for the RPN loss (at most half positive).
        roi_batchsize: Proposals sampled per image for the box head.
        roi_positive_fraction: Largest share of characters among them (the rest is
            background).
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
        seed: Seed of the patches, the initial weights, the sampled anchors and RoIs and
            the order of the pages.
        progress_interval: Progress bar update interval in iterations.
        comm: A ChainerMN communicator (``None``: one process): each rank trains on its
            shard of the pages; ``batchsize`` is per rank.
        lr_rule: With ``comm``, how the lr grows with the global batch
            (:data:`kr.training.distributed.LR_RULES`).
        run_record: Written as ``out/args.json`` when the run starts (inputs checked).

    Returns:
        kr.training.TrainingResult: ``model`` is the trained FasterRCNNFPNResNet, on the
        CPU.

    Raises:
        ValueError: Bad settings, unreadable images.
        FileNotFoundError: Missing data, split files or snapshot.
        kr.training.TrainingDiverged: The loss became NaN or infinite (the last good
            snapshot is kept).
    """
    check_input_size(input_size)
    spec, schedule = detector_run_settings(batchsize, epoch, iterations, optimizer, lr,
                                           weight_decay, grad_clip, snapshot_interval,
                                           eval_interval, log_interval)
    if not 0 < roi_positive_fraction <= 1:
        raise ValueError('--roi-positive-fraction must be in (0, 1], got {}'.format(
            roi_positive_fraction))
    if rpn_batchsize < 1 or roi_batchsize < 1:
        raise ValueError('--rpn-batchsize and --roi-batchsize must be at least 1, got {} and '
                         '{}'.format(rpn_batchsize, roi_batchsize))
    check_resume(resume, comm)
    # The model first: it checks the architecture settings before any data is read.
    if seed is not None:
        seed_everything(rank_seed(seed, comm))
    model = FasterRCNNFPNResNet(depth=depth, width=width, input_size=input_size,
                                patch_fraction=patch_fraction, anchor_sizes=anchor_sizes,
                                anchor_ratios=anchor_ratios)
    train_set, val_loss, val_map = make_page_datasets(data_dir, split_dir, cv_index, full_data,
                                                 input_size, patch_fraction, val_pages,
                                                 rank_seed(seed, comm))
    logger.info('%d training pages, %d validation pages', len(train_set),
                0 if val_loss is None else len(val_loss))
    train_set = shard(train_set, comm, train=True, seed=seed or 0)
    chain = FasterRCNNTrainChain(model, rpn_batchsize=rpn_batchsize,
                                 roi_batchsize=roi_batchsize,
                                 roi_positive_fraction=roi_positive_fraction)
    return train_detector_chain(chain, model, train_set, val_loss, val_map, out, spec, schedule,
                                batchsize, fixed_size_converter, LOSS_KEYS, comm=comm,
                                device=device, workers=workers, resume=resume,
                                progress_interval=progress_interval,
                                run_record=run_record, lr_rule=lr_rule)
