"""Optimizers by name, with the hyperparameter that the lr drops shift."""

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
