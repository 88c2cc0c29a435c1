import pytest

from kr.training import resolve_preset


def _train(data_dir, epoch=10, iterations=None, lr=0.1, width=1.0):
    return data_dir


PRESETS = {'full': {}, 'demo': {'iterations': 40, 'width': 0.25}}


def test_defaults_preset_then_flags():
    assert resolve_preset(_train, PRESETS, 'full') == dict(epoch=10, iterations=None, lr=0.1,
                                                           width=1.0)
    demo = resolve_preset(_train, PRESETS, 'demo', lr=None, width=0.5, data_dir='d', other=3)
    assert demo == dict(epoch=10, iterations=40, lr=0.1, width=0.5, data_dir='d')
    # --epoch alone turns an iteration preset into an epoch run; both: iterations win later
    assert resolve_preset(_train, PRESETS, 'demo', epoch=3)['iterations'] is None
    assert resolve_preset(_train, PRESETS, 'demo', epoch=3, iterations=7)['iterations'] == 7


def test_bad_presets_are_named():
    with pytest.raises(ValueError, match="unknown preset 'huge': choose one of demo, full"):
        resolve_preset(_train, PRESETS, 'huge')
    with pytest.raises(ValueError, match="preset 'x' sets depth, which _train does not take"):
        resolve_preset(_train, {'x': {'depth': 3}}, 'x')
