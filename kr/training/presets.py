"""Presets: named sets of keyword arguments of a training function, resolved one way.

A training function's keyword defaults are the library's settings, written once; they are
the ``full`` preset (the original's schedule), so ``PRESETS['full']`` is empty. Other
presets (``demo``, sized for a CPU) list only what they change. Flags a user gives
explicitly win over both.
"""

import inspect

#: The run-length pair: giving one explicitly clears the other taken from a preset.
RUN_LENGTH_KEYS = ('epoch', 'iterations')


def function_defaults(func) -> dict:
    """The keyword parameters of ``func`` that have defaults, with those defaults."""
    return {name: p.default for name, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


def resolve_preset(func, presets: dict, preset: str = 'full', **given) -> dict:
    """The keyword arguments to call ``func`` with.

    ``func``'s own defaults, overridden by ``presets[preset]``, overridden by the ``given``
    values that are not ``None``. ``given`` keys that are not parameters of ``func`` are
    ignored (a script may pass all its flags). Giving ``epoch`` without ``iterations``
    switches an iteration-length preset to epochs (``iterations`` always wins over
    ``epoch``: see :class:`kr.training.Schedule`).

    Args:
        func: A training function (``train_detector``, ``train_classifier`` ...).
        presets: ``{name: {parameter: value}}``.
        preset: A key of ``presets``.
        **given: Explicit values (``None``: not given).

    Returns:
        dict: Every parameter of ``func`` that has a default or was given.

    Raises:
        ValueError: Unknown preset (the choices are named), or a preset naming a parameter
            that ``func`` lacks.
    """
    if preset not in presets:
        raise ValueError('unknown preset {!r}: choose one of {}'.format(
            preset, ', '.join(sorted(presets))))
    params = inspect.signature(func).parameters
    unknown = sorted(set(presets[preset]) - set(params))
    if unknown:
        raise ValueError('preset {!r} sets {}, which {} does not take'.format(
            preset, ', '.join(unknown), func.__name__))
    settings = function_defaults(func)
    settings.update(presets[preset])
    given = {k: v for k, v in given.items() if v is not None and k in params}
    if 'epoch' in given and 'iterations' not in given and 'iterations' in params:
        settings['iterations'] = None
    settings.update(given)
    return settings
