#!/usr/bin/env python
"""Finetune a trained classifier on trainval crops plus pseudo labels (SPEC section 5).

    python scripts/06_finetune_classifier.py --gpu 0 \\
        --pseudo-labels-dir data/kuzushiji-recognition-pseudo \\
        --out results/classifier-finetune results/classifier/model_900.npz

``--preset full`` (the default) is the SPEC's schedule (lr 0.01, 100 epochs of 20,000 +
10,000 crops, lr drop at 50%); ``--preset demo`` is sized for a CPU. Writes the same files as
script 04, and an ``args.json`` with the pretrained model's architecture, so the result
loads like any classifier run.
"""

import argparse

from kr import cli
from kr.classifier import classifier_architecture
from kr.classifier import finetune
from kr.classifier.transforms import JITTERS
from kr.training import TrainingDiverged


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                parents=[cli.data_args(), cli.device_args(), cli.dist_args(),
                                         cli.output_args('results/classifier-finetune')])
    p.add_argument('pretrained', help="model_<epoch>.npz of script 04 (its args.json beside it)")
    p.add_argument('--pseudo-labels-dir', required=True, help='output folder of script 05')
    p.add_argument('--crop-dir', default=None,
                   help='crops of scripts/02_crop_characters.py (default: <data-dir>-crops)')
    p.add_argument('--preset', choices=sorted(finetune.PRESETS), default='full')
    p.add_argument('--epoch', type=int)
    p.add_argument('--iterations', type=int, default=None, help='overrides --epoch')
    p.add_argument('--batchsize', type=int)
    p.add_argument('--lr', type=float)
    p.add_argument('--trainval-per-epoch', type=int, help='trainval crops per epoch')
    p.add_argument('--pseudo-per-epoch', type=int, help='pseudo-label crops per epoch')
    p.add_argument('--jitter', choices=sorted(JITTERS),
                   help="training crop jitter (default: the pretrained run's)")
    p.add_argument('--cv-index', type=int, default=0, help='fold whose val crops are reported')
    p.add_argument('--resume', default=None, help='trainer snapshot (snapshot_iter_<n>)')
    p.add_argument('--workers', '--loaderjob', dest='workers', type=int, default=None,
                   help='data loading processes (default: 0 on the CPU, 8 on a GPU)')
    p.add_argument('--snapshot-interval', type=int)
    p.add_argument('--eval-interval', type=int)
    p.add_argument('--log-interval', type=int)
    p.add_argument('--seed', type=int, default=None)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    comm = None
    try:
        comm = cli.communicator(args)
        settings = cli.preset_settings(finetune.finetune_classifier, finetune.PRESETS, args)
        vars(args).update(classifier_architecture(args.pretrained))
        if settings['jitter'] is None:    # recorded as used
            settings['jitter'] = args.jitter = finetune.pretrained_jitter(args.pretrained)
        record = cli.setup_run(args)
        result = finetune.finetune_classifier(**dict(settings, run_record=record, comm=comm))
    except (ValueError, FileNotFoundError, TrainingDiverged, ImportError) as e:
        cli.fail(e, comm)
    print('validation accuracy (val crops are part of trainval): {}'.format(
        result.observation.get('validation/main/accuracy')))


if __name__ == '__main__':
    main()
