"""Presets: named sets of keyword arguments of a training function, resolved one way.

A training function's keyword defaults are the library's settings, written once; they are
the ``full`` preset (the original's schedule), so ``PRESETS['full']`` is empty. Other
presets (``demo``, sized for a CPU) list only what they change. Flags a user gives
explicitly win over both.
"""

import inspect

#: The run-length pair: giving one explicitly clears the other taken from a preset.
RUN_LENGTH_KEYS = ('epoch', 'iterations')
#: Intervals counted in the run's length unit (:class:`kr.training.Schedule`).
RUN_INTERVAL_KEYS = ('snapshot_interval', 'eval_interval')


def _length(settings: dict):
    """``(length, unit)`` of a run's settings: iterations when set, else epochs."""
    if settings.get('iterations') is not None:
        return settings['iterations'], 'iteration'
    return settings.get('epoch'), 'epoch'


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

    The snapshot and eval intervals count in the run's unit. When the flags change that
    unit (``iterations`` given for an epoch preset, or ``epoch`` for an iteration one) and
    leave an interval to the preset, the interval keeps its share of the run instead of
    its number: the classifier's ``demo`` (55 epochs, validation every 8) with
    ``iterations=5500`` validates every 800 iterations, not every 8.

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
    before, before_unit = _length(settings)
    if 'epoch' in given and 'iterations' not in given and 'iterations' in params:
        settings['iterations'] = None
    settings.update(given)
    after, after_unit = _length(settings)
    if after_unit != before_unit and before and after:
        for key in RUN_INTERVAL_KEYS:
            if key in settings and key not in given and settings[key]:
                settings[key] = max(1, int(round(settings[key] * after / before)))
    return settings
