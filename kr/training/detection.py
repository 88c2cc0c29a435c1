"""The training run of a detector, whatever its family: validations, plots, the assembler.

Every detector family's ``train_detector`` builds its datasets, model and train chain and
ends here: validation loss and VOC mAP (``validation/main/map``, SPEC section 3) on the
fold's val pages when there are any, the loss and mAP plots, and :func:`kr.training.train`.
"""

from kr.evaluation.detection_map import DetectionMapEvaluator
from kr.training.assembler import loss_validation
from kr.training.assembler import Schedule
from kr.training.assembler import train
from kr.training.assembler import Validation
from kr.training.optimizers import OptimizerSpec


def detector_run_settings(batchsize: int, epoch: int, iterations: int, optimizer: str,
                          lr: float, weight_decay: float, grad_clip: float,
                          snapshot_interval: int, eval_interval: int, log_interval: int):
    """The optimizer spec and schedule of a detector run, from ``train_detector``'s common
    settings (checked first, so a bad one is named before anything is built or read).

    Returns:
        tuple ``(OptimizerSpec, Schedule)``.

    Raises:
        ValueError: A batch size under 1, or neither a positive epoch count nor iterations.
    """
    if batchsize < 1:
        raise ValueError('--batchsize must be at least 1, got {}'.format(batchsize))
    if iterations is None and (epoch is None or epoch < 1):
        raise ValueError('give a positive --epoch or --iterations')
    return (OptimizerSpec(optimizer, lr, weight_decay=weight_decay, grad_clip=grad_clip),
            Schedule.of(epoch, iterations, snapshot_interval=snapshot_interval,
                        eval_interval=eval_interval, log_interval=log_interval))


def train_detector_chain(chain, model, train_set, val_loss, val_map, out: str, optimizer,
                         schedule, batchsize: int, converter, loss_keys, map_detector=None,
                         comm=None, **kwargs):
    """Train a detector's chain through the training assembler, validated as every family is.

    Args:
        chain: The family's train chain (reports ``main/`` + each of ``loss_keys``).
        model: The detector (its weights are the model files; ``detect`` for the mAP).
        train_set: Training examples for ``converter``.
        val_loss: Validation examples for the loss (``None``: no validation).
        val_map: Validation items (dicts ``image`` / ``bboxes``) for the mAP.
        out: Output folder.
        optimizer: :class:`kr.training.OptimizerSpec`.
        schedule: :class:`kr.training.Schedule`.
        batchsize: Examples per iteration (per rank).
        converter: Batches the examples for ``chain``.
        loss_keys: The chain's reported loss keys (``'loss'`` first).
        map_detector: What the mAP evaluator detects with (default: ``model``).
        comm: A ChainerMN communicator (``None``: one process).
        **kwargs: The rest of :func:`kr.training.train`'s keywords (``device``,
            ``workers``, ``resume``, ``progress_interval``, ``run_record``, ``lr_rule``).

    Returns:
        kr.training.TrainingResult.
    """
    validations = []
    plots = {'loss.png': ['main/loss', 'validation/main/loss']}
    print_keys = ['main/' + k for k in loss_keys]
    if val_loss is not None:
        validations.append(loss_validation(val_loss, chain, converter))
        validations.append(Validation('validation_map', val_map, lambda iterator, device: (
            DetectionMapEvaluator(iterator, model, detector=map_detector, comm=comm)),
            batchsize=1, gathers=True))
        plots['map.png'] = ['validation/main/map']
        print_keys += ['validation/main/loss', 'validation/main/map']
    return train(chain, train_set, out, optimizer, schedule, batchsize, model=model,
                 converter=converter, validations=validations, print_keys=print_keys,
                 plots=plots, comm=comm, **kwargs)
