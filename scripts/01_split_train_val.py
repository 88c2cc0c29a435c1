"""Split train.csv into group k-fold train/val CSVs by book title (SPEC section 2).

    python scripts/01_split_train_val.py [--data-dir DIR] [--split-dir DIR] [--n-splits 4]

Writes <split-dir>/train-<k>.csv and val-<k>.csv for every fold k; no book is on both sides.
"""

import argparse
import logging
import sys

from kr import cli
from kr.datasets import split_train_val
from kr.datasets.split import N_SPLITS

logger = logging.getLogger('01_split_train_val')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], parents=[cli.data_args()])
    p.add_argument('--n-splits', type=int, default=N_SPLITS,
                   help='number of folds (default: %(default)s)')
    args = p.parse_args(argv)
    args.split_dir = args.split_dir or cli.default_split_dir(args.data_dir)
    return args


def main(argv=None):
    args = parse_args(argv)
    record = cli.setup_run(args)
    try:
        summary = split_train_val(data_dir=args.data_dir, split_dir=args.split_dir,
                                  n_splits=args.n_splits, run_record=record)
    except (FileNotFoundError, ValueError) as e:
        sys.exit('error: {}'.format(e))
    for k, s in summary.items():
        logger.info('fold %d: %d train / %d val pages', k, s['train_pages'], s['val_pages'])
    logger.info('split written to %s', args.split_dir)


if __name__ == '__main__':
    main()
