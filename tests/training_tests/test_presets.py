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


def _run(data_dir, epoch=10, iterations=None, snapshot_interval=5, eval_interval=2):
    return data_dir


def test_intervals_keep_their_share_of_the_run_when_the_length_changes_unit():
    presets = {'full': {}, 'demo': {'epoch': 48, 'snapshot_interval': 24, 'eval_interval': 8},
               'iter': {'iterations': 700, 'snapshot_interval': 175, 'eval_interval': 175}}
    # epochs -> iterations: 24 and 8 of 48 epochs are half and a sixth of the run
    run = resolve_preset(_run, presets, 'demo', iterations=4800)
    assert (run['snapshot_interval'], run['eval_interval']) == (2400, 800)
    # an interval given explicitly stays as given; a short run still gets 1
    run = resolve_preset(_run, presets, 'demo', iterations=4800, eval_interval=50)
    assert (run['snapshot_interval'], run['eval_interval']) == (2400, 50)
    run = resolve_preset(_run, presets, 'demo', iterations=2)
    assert (run['snapshot_interval'], run['eval_interval']) == (1, 1)
    # iterations -> epochs
    run = resolve_preset(_run, presets, 'iter', epoch=8)
    assert (run['epoch'], run['iterations'], run['snapshot_interval'],
            run['eval_interval']) == (8, None, 2, 2)
    # the same unit: the intervals are numbers of it, untouched
    run = resolve_preset(_run, presets, 'demo', epoch=96)
    assert (run['snapshot_interval'], run['eval_interval']) == (24, 8)
    run = resolve_preset(_run, presets, 'iter', iterations=1400)
    assert (run['snapshot_interval'], run['eval_interval']) == (175, 175)
    # the function's defaults (full) are epochs too
    run = resolve_preset(_run, presets, 'full', iterations=100)
    assert (run['snapshot_interval'], run['eval_interval']) == (50, 20)


def test_bad_presets_are_named():
    with pytest.raises(ValueError, match="unknown preset 'huge': choose one of demo, full"):
        resolve_preset(_train, PRESETS, 'huge')
    with pytest.raises(ValueError, match="preset 'x' sets depth, which _train does not take"):
        resolve_preset(_train, {'x': {'depth': 3}}, 'x')


def test_the_classifier_seed000_preset_is_the_second_seeds_recipe():
    from kr.classifier import CLASSIFIERS
    from kr.classifier import training
    from kr.classifier.resnet import DROPOUT_RATIO as RESNET_DROPOUT
    from kr.classifier.xception import DROPOUT_RATIO as XCEPTION_DROPOUT
    full = resolve_preset(training.train_classifier, training.PRESETS, 'full')
    seed = resolve_preset(training.train_classifier, training.PRESETS, 'seed000')
    assert {k for k in full if full[k] != seed[k]} == {'model', 'augment'}
    assert (seed['model'], seed['augment'], seed['sampler']) == ('xception', 'none', 'random')
    assert resolve_preset(training.train_classifier, training.PRESETS, 'seed000',
                          model='resnet50')['model'] == 'resnet50'
    # both heads: average pooling, dropout, then the class layer
    assert RESNET_DROPOUT == XCEPTION_DROPOUT == 0.5
    assert {'xception', 'resnet50'} <= set(CLASSIFIERS)
