"""Pseudo labels: recognise the test pages and keep the confident characters (SPEC section 5).

    python scripts/05_make_pseudo_labels.py DETECTOR.npz CLASSIFIER.npz --out DIR \\
        [--data-dir DIR] [--device 0] [--class-threshold 0.9]

Writes <out>/char_images/ (crops, padding 0.2 as in script 02), <out>/pseudo_labels.json and
<out>/args.json. An interrupted run resumes where it stopped (--restart starts over). The
data folder's class table, when given, must be the classifier's (its run folder has it).
"""

import argparse
import logging

from kr import cli
from kr.inference import load_recognizer
from kr.pseudo_labels import make_pseudo_labels
from kr.pseudo_labels import PSEUDO_LABEL_DETECTION_THRESHOLD
from kr.pseudo_labels import PSEUDO_LABEL_THRESHOLD

logger = logging.getLogger('05_make_pseudo_labels')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        parents=[cli.recognizer_args(PSEUDO_LABEL_DETECTION_THRESHOLD, PSEUDO_LABEL_THRESHOLD),
                 cli.data_args(), cli.device_args(), cli.communicator_args(),
                 cli.output_args()])
    p.add_argument('--restart', action='store_true', help='delete --out and start over')
    p.add_argument('--detections', default=None,
                   help='reuse this detection cache (detection.csv of script 07 with the same '
                        'detector, at a threshold no higher than this one): only pages '
                        'missing from it are detected')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    record = cli.setup_run(args)
    comm = None
    try:
        comm = cli.communicator(args)
        recognizer = load_recognizer(args.detector, args.classifier, args.data_dir,
                                     **cli.recognizer_settings(args, comm))
        summary = make_pseudo_labels(recognizer, data_dir=args.data_dir, out_dir=args.out,
                                     restart=args.restart, detections=args.detections,
                                     run_record=record, comm=comm)
    except (FileNotFoundError, ValueError, ImportError) as e:
        cli.fail(e, comm)
    if summary is None:  # a rank other than 0 of a distributed run
        return
    logger.info('%d pseudo labels from %d test pages in %s', summary['labels'],
                summary['pages'], args.out)


if __name__ == '__main__':
    main()
