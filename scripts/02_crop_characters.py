"""Cut every labelled train character into a padded square crop (SPEC section 2).

    python scripts/02_crop_characters.py [--data-dir DIR] [--split-dir DIR] [--out DIR]

Writes <out>/char_images/<image_id>/*.png and the indexes trainval.json, train-<k>.json and
val-<k>.json (one pair per fold written by scripts/01_split_train_val.py). The folder is
built under a temporary name and appears only when complete; --overwrite replaces it.
"""

import argparse
import logging
import sys

from kr import cli
from kr.datasets import crop_characters

logger = logging.getLogger('02_crop_characters')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                parents=[cli.data_args(), cli.output_args(default='')])
    p.add_argument('--workers', type=int, default=2,
                   help='processes cutting pages (default: %(default)s)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out folder')
    args = p.parse_args(argv)
    args.out = args.out or cli.default_crop_dir(args.data_dir)
    args.split_dir = args.split_dir or cli.default_split_dir(args.data_dir)
    return args


def main(argv=None):
    args = parse_args(argv)
    # args.json goes in the crop folder itself, which must not exist before the crops do.
    record = cli.setup_run(args)
    try:
        summary = crop_characters(data_dir=args.data_dir, out_dir=args.out,
                                  split_dir=args.split_dir, workers=args.workers,
                                  overwrite=args.overwrite, run_record=record)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        sys.exit('error: {}'.format(e))
    logger.info('%d crops of %d pages in %s; indexes: %s', summary['crops'], summary['pages'],
                args.out, ', '.join('{} ({})'.format(k, v) for k, v in summary['indexes'].items()))


if __name__ == '__main__':
    main()
