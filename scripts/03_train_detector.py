#!/usr/bin/env python
"""Train a character detector of a family of kr.detector.DETECTORS (CenterNet: SPEC section 3).

    python scripts/03_train_detector.py --gpu 0 --out results/detector --full-data
    python scripts/03_train_detector.py --preset demo --out results/detector-demo
    python scripts/03_train_detector.py --detector centernet --preset demo --help

``--detector`` picks the family (default centernet), ``--preset`` one of its hyperparameter
sets: for CenterNet ``full`` (the default) is the original's schedule (700 epochs of batch
16 on 416 px crops) and ``demo`` a CPU-sized run on a quarter-width network. Any flag given
explicitly overrides the preset; ``--help`` after ``--detector`` and ``--preset`` lists
every setting of that family with its default and the preset's value. Writes ``args.json`` (the settings used, with the
``--detector`` family), ``log``, ``loss.png``, ``map.png``, model snapshots
(``model_<epoch>.npz``, or ``model_iter_<n>.npz`` for ``--iterations`` runs),
``model_final.npz`` and trainer snapshots ``snapshot_iter_<n>`` (for ``--resume``) to ``--out``.
"""

import argparse

from kr import cli
from kr.detector import DETECTORS
from kr.training import OPTIMIZERS
from kr.training import TrainingDiverged


def _family_args() -> argparse.ArgumentParser:
    """``--detector`` and ``--preset``, read first: they decide the other flags."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--detector', choices=sorted(DETECTORS), default='centernet',
                   help='detector family (default: %(default)s)')
    p.add_argument('--preset', default='full',
                   help='hyperparameter set of the family ({}); explicit flags override it; '
                        '`--detector D --preset P --help` shows its values (default: '
                        '%(default)s)'.format('; '.join(
                            '{}: {}'.format(name, ', '.join(DETECTORS[name].training().PRESETS))
                            for name in sorted(DETECTORS))))
    return p


def parse_args(argv=None):
    family_parser = _family_args()
    known, _ = family_parser.parse_known_args(argv)
    training = DETECTORS[known.detector].training()
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        parents=[family_parser, cli.data_args(), cli.device_args(), cli.dist_args(),
                 cli.output_args('results/detector')])
    p.add_argument('--epoch', type=int, help='training length in epochs')
    p.add_argument('--iterations', type=int,
                   help='training length in iterations (wins over --epoch; then the '
                        'snapshot and eval intervals count iterations)')
    p.add_argument('--batchsize', type=int, help='training examples per iteration')
    p.add_argument('--optimizer', choices=sorted(OPTIMIZERS), help='optimizer')
    p.add_argument('--lr', type=float, help='learning rate (Adam: alpha)')
    p.add_argument('--snapshot-interval', type=int,
                   help='model and trainer snapshots every this many epochs (or iterations)')
    p.add_argument('--eval-interval', type=int,
                   help='validation every this many epochs (or iterations)')
    p.add_argument('--log-interval', type=int, help='log every this many iterations')
    p.add_argument('--val-pages', type=int, help='number of val pages to validate on')
    p.add_argument('--full-data', action='store_true',
                   help='train on all of train.csv (the fold\'s val pages still validate)')
    p.add_argument('--cv-index', type=int, default=0, help='fold (default: %(default)s)')
    p.add_argument('--workers', type=int, default=None,
                   help='data-loading processes; 0 loads in the main process '
                        '(default: 0 on the CPU, 8 on a GPU)')
    p.add_argument('--resume', help='trainer snapshot (snapshot_iter_<n>) to resume from')
    p.add_argument('--seed', type=int, help='seed of weights and augmentation')
    try:
        cli.add_settings_args(p, training.train_detector, training.PRESETS, known.preset,
                              '{} settings'.format(known.detector))
    except ValueError as e:
        p.error(str(e))
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    comm = None
    training = DETECTORS[args.detector].training()
    try:
        comm = cli.communicator(args)
        settings = cli.preset_settings(training.train_detector, training.PRESETS, args)
        record = cli.setup_run(args)
        training.train_detector(**dict(settings, run_record=record, comm=comm))
    except (TrainingDiverged, ValueError, FileNotFoundError, ImportError) as e:
        cli.fail(e, comm)


if __name__ == '__main__':
    main()
