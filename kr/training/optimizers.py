"""Optimizers by name, with the hyperparameter that the lr drops shift."""

import dataclasses

import chainer

#: NesterovAG momentum of the original (detector and classifier).
MOMENTUM = 0.9

#: ``--optimizer`` choices: name -> (factory(lr, momentum), name of the lr hyperparameter).
#: NesterovAG is the original's; Adam (lr = its alpha) learns several times faster in the
#: few hundred iterations of a CPU demo run.
OPTIMIZERS = {
    'nesterov': (lambda lr, momentum: chainer.optimizers.NesterovAG(lr=lr, momentum=momentum),
                 'lr'),
    'adam': (lambda lr, momentum: chainer.optimizers.Adam(alpha=lr), 'alpha'),
}


def make_optimizer(name: str, lr: float, momentum: float = MOMENTUM):
    """``(optimizer, lr_attr)`` for a key of :data:`OPTIMIZERS`.

    Raises:
        ValueError: Unknown name (the choices are listed).
    """
    if name not in OPTIMIZERS:
        raise ValueError('unknown optimizer {!r}: choose one of {}'.format(
            name, ', '.join(sorted(OPTIMIZERS))))
    factory, lr_attr = OPTIMIZERS[name]
    return factory(lr, momentum), lr_attr


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer by name and its hyperparameters, built onto a train chain by the
    training assembler.

    Attributes:
        name: A key of :data:`OPTIMIZERS`.
        lr: Learning rate (Adam: its alpha).
        momentum: NesterovAG momentum.
        weight_decay: L2 coefficient of a WeightDecay hook (0: none).
        grad_clip: Gradient-norm threshold of a GradientClipping hook (``None``: none);
            it runs after the weight decay, as in the original.
    """

    name: str = 'nesterov'
    lr: float = 0.1
    momentum: float = MOMENTUM
    weight_decay: float = 0.0
    grad_clip: float = None

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError('unknown optimizer {!r}: choose one of {}'.format(
                self.name, ', '.join(sorted(OPTIMIZERS))))
        if self.lr is None or not self.lr > 0:
            raise ValueError('lr must be > 0, got {}'.format(self.lr))
        if self.weight_decay is None or self.weight_decay < 0:
            raise ValueError('weight_decay must be >= 0, got {}'.format(self.weight_decay))
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError('grad_clip must be > 0, got {}'.format(self.grad_clip))

    def build(self, target):
        """``(optimizer, lr_attr)`` set up on ``target``, with its hooks."""
        optimizer, lr_attr = make_optimizer(self.name, self.lr, self.momentum)
        optimizer.setup(target)
        if self.weight_decay:
            optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(self.weight_decay))
        if self.grad_clip is not None:
            optimizer.add_hook(chainer.optimizer_hooks.GradientClipping(self.grad_clip))
        return optimizer, lr_attr
