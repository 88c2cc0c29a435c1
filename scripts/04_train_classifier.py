#!/usr/bin/env python
"""Train the character classifier on the crops of script 02 (SPEC section 4).

    python scripts/04_train_classifier.py --gpu 0 --out results/classifier --full-data
    python scripts/04_train_classifier.py --preset demo --out results/classifier-demo

``--preset full`` (the default) is the SPEC's schedule; ``--preset demo`` is sized for a CPU;
``--preset seed000`` is the second seed's recipe (Xception, or ``--model resnet50``, without
augmentation or class balancing; SPEC section 11). Options given explicitly override the
preset. Writes ``args.json`` (with ``n_classes``, so
``kr.classifier.load_classifier`` can rebuild the model), the class table it was trained
with (``unicode_translation.csv``), logs, plots, snapshots, model snapshots and
``model_final.npz`` to ``--out``.
"""

import argparse

from kr import cli
from kr.classifier import CLASSIFIERS
from kr.classifier import training
from kr.classifier.transforms import JITTERS
from kr.datasets import KuzushijiUnicodeMapping
from kr.datasets.sampling import SAMPLERS
from kr.training import OPTIMIZERS
from kr.training import TrainingDiverged


def fractions(text: str) -> tuple:
    """``'0.5,0.75'`` -> ``(0.5, 0.75)`` (argparse names the flag when this fails)."""
    try:
        return tuple(float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            'expected comma-separated fractions such as 0.5,0.75, got {!r}'.format(text))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                parents=[cli.data_args(), cli.device_args(), cli.dist_args(),
                                         cli.output_args('results/classifier')])
    p.add_argument('--crop-dir', default=None,
                   help='crops of scripts/02_crop_characters.py (default: <data-dir>-crops)')
    p.add_argument('--model', choices=sorted(CLASSIFIERS),
                   help='architecture (full preset: mobilenetv3, the original\'s; demo: resnet18; '
                        'seed000: xception, or resnet50, the second seed\'s two)')
    p.add_argument('--preset', choices=sorted(training.PRESETS), default='full',
                   help='settings for the options below left unset (default: %(default)s)')
    p.add_argument('--epoch', type=int, help='epochs of --epoch-size crops')
    p.add_argument('--iterations', type=int, default=None,
                   help='run length in iterations (overrides --epoch; then the snapshot and '
                        'eval intervals count iterations)')
    p.add_argument('--epoch-size', type=int, help='crops per epoch')
    p.add_argument('--batchsize', type=int)
    p.add_argument('--lr', type=float)
    p.add_argument('--weight-decay', type=float)
    p.add_argument('--lr-drops', type=fractions,
                   help='fractions of the run after which the lr drops x0.1, comma-separated '
                        '(full preset: 0.5,0.75, SPEC section 4; demo: 0.7,0.9)')
    p.add_argument('--optimizer', choices=sorted(OPTIMIZERS),
                   help="nesterov (the original's) or adam (--lr is then its alpha)")
    p.add_argument('--input-size', type=int, help='crop side in pixels')
    p.add_argument('--width', type=float, help='channel multiplier of the network')
    p.add_argument('--dropout', type=float,
                   help="dropout ratio before the class layer (default: the architecture's, "
                        '0.2 MobileNetV3, 0.5 ResNet and Xception; demo preset: 0)')
    p.add_argument('--sampler', choices=SAMPLERS,
                   help='order of the training crops: random (uniform over crops) or balanced '
                        '(default: random)')
    p.add_argument('--full-data', action='store_true',
                   help='train on all labelled pages (validation then overlaps training)')
    p.add_argument('--cv-index', type=int, default=0)
    p.add_argument('--augment', choices=training.AUGMENTATIONS,
                   help='training augmentation: full (SPEC section 4), light (colour only) '
                        'or none (crop jitter only)')
    p.add_argument('--jitter', choices=sorted(JITTERS),
                   help='training crop jitter: spec (SPEC section 4: side 1.1-1.3 of the '
                        "character's longer side, centre shift 0.1) or wide (0.95-1.4, 0.15: "
                        "for a detector with looser boxes; the demo preset's)")
    p.add_argument('--resume', default=None, help='trainer snapshot (snapshot_iter_<n>)')
    p.add_argument('--workers', '--loaderjob', dest='workers', type=int, default=None,
                   help='data loading processes (default: 0 on the CPU, 8 on a GPU; '
                        '--loaderjob is the original\'s name)')
    p.add_argument('--snapshot-interval', type=int,
                   help='epochs (or iterations) between snapshots')
    p.add_argument('--eval-interval', type=int, help='epochs (or iterations) between validations')
    p.add_argument('--val-samples', type=int, help='val crops used (fixed random subset)')
    p.add_argument('--log-interval', type=int, help='iterations between log entries')
    p.add_argument('--seed', type=int, default=None)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    comm = None
    try:
        comm = cli.communicator(args)
        settings = cli.preset_settings(training.train_classifier, training.PRESETS, args)
        args.n_classes = len(KuzushijiUnicodeMapping(args.data_dir))
        record = cli.setup_run(args)
        result = training.train_classifier(**dict(settings, run_record=record, comm=comm))
    except (ValueError, FileNotFoundError, TrainingDiverged, ImportError) as e:
        cli.fail(e, comm)
    print('validation accuracy: {}'.format(result.observation.get('validation/main/accuracy')))


if __name__ == '__main__':
    main()
