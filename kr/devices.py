"""Chainer devices from the ``--device`` strings users type."""

import chainer


def get_device(spec=None):
    """:func:`chainer.get_device` of ``spec``, with an error that says what to do.

    Args:
        spec: ``-1`` / ``'-1'`` (CPU), ``0`` / ``'0'`` (GPU 0), a specifier such as
            ``'@numpy'`` or ``'@cupy:0'``, a device, or ``None`` (the CPU).

    Returns:
        chainer.backend.Device

    Raises:
        ValueError: A GPU was asked for where CuPy or CUDA is missing, or an unknown
            specifier (the value is named).
    """
    if spec is None:
        spec = '@numpy'
    try:
        return chainer.get_device(spec)
    except RuntimeError as e:
        raise ValueError('device {!r} needs CuPy and a CUDA GPU ({}); install the gpu extra '
                         '(pip install -e ".[gpu]") or use --device -1 for the CPU'.format(
                             spec, str(e).split('(')[0].strip())) from None
    except (ValueError, TypeError) as e:
        raise ValueError('unknown device {!r} ({}): use -1 (CPU), 0 (GPU 0) or a specifier '
                         'such as @cupy:0'.format(spec, e)) from None
