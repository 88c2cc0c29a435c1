"""Write a Kaggle submission: detect, classify and list every test page (SPEC section 6).

    python scripts/07_make_submission.py DETECTOR.npz CLASSIFIER.npz --out DIR \\
        [--data-dir DIR] [--device 0]

Writes <out>/submission.csv (every test page once, in sample_submission.csv order; written
whole or not at all), <out>/detection.csv (the detections: pass it as --detections to a later
run with another classifier to skip the detector), <out>/submission_info.json (thresholds, models, versions) and, when the test
pages have ground truth (a synthetic set), <out>/metrics.json and <out>/pages.csv.
"""

import argparse
import json
import logging

from kr import cli
from kr.inference import CLASS_SCORE_THRESHOLD
from kr.inference import load_recognizer
from kr.submission import make_submission

logger = logging.getLogger('07_make_submission')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        parents=[cli.recognizer_args('submission', CLASS_SCORE_THRESHOLD),
                 cli.data_args(), cli.device_args(), cli.communicator_args(),
                 cli.output_args()])
    p.add_argument('--restart', action='store_true',
                   help='forget the pages of an unfinished run in --out (by default an '
                        'interrupted run resumes where it stopped)')
    p.add_argument('--detections', default=None,
                   help='reuse this detection cache (the detection.csv of an earlier run with '
                        'the same detector): only pages missing from it are detected')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    record = cli.setup_run(args)
    comm = None
    try:
        comm = cli.communicator(args)
        recognizer = load_recognizer(args.detector, args.classifier, args.data_dir,
                                     **cli.recognizer_settings(args, comm))
        info = make_submission(recognizer, data_dir=args.data_dir, out_dir=args.out,
                               detections=args.detections, run_record=record,
                               restart=args.restart, comm=comm)
    except (FileNotFoundError, ValueError, ImportError) as e:
        cli.fail(e, comm)
    if info is None:  # a rank other than 0 of a distributed run
        return
    logger.info('%d characters on %d pages: %s', info['characters'], info['pages'],
                info['submission'])
    if 'metrics' in info:
        print(json.dumps(info['metrics']))


if __name__ == '__main__':
    main()
