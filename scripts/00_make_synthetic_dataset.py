#!/usr/bin/env python
"""Write a synthetic kuzushiji dataset in the Kaggle layout (train.csv, train_images/, ...).

Every later step (split, crops, detector, classifier, submission, F1) can then run without
the real competition data::

    python scripts/00_make_synthetic_dataset.py --out data/kuzushiji-recognition-synthetic \\
        --train-pages 200 --test-pages 50 --seed 0

The test pages' ground truth is written to test_labels.csv, so F1 can be measured on them.
"""

import argparse
import logging

from kr import cli
from kr.synthetic import generator


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     parents=[cli.output_args(default=generator.DEFAULT_OUT)])
    parser.add_argument('--train-pages', type=int, default=generator.DEFAULT_TRAIN_PAGES,
                        help='number of training pages (default: %(default)s)')
    parser.add_argument('--test-pages', type=int, default=generator.DEFAULT_TEST_PAGES,
                        help='number of test pages, from other books (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='the same seed gives byte-identical files (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=2,
                        help='processes rendering pages (default: %(default)s)')
    parser.add_argument('--page-height', type=int, default=generator.DEFAULT_PAGE_HEIGHT,
                        help='page height in pixels; width is about 2/3 of it '
                             '(default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out folder')
    parser.add_argument('--no-brush-fonts', dest='brush_fonts', action='store_false',
                        help='leave out the installed brush fonts (fonts-kouzan-mouhitsu, '
                             'fonts-aoyagi-soseki, fonts-aoyagi-kouzan-t; used by default): '
                             'the bundled IPAexGothic only')
    parser.add_argument('--system-fonts', action='store_true',
                        help='also use installed CJK fonts that draw the whole vocabulary '
                             '(off by default so that the data does not depend on the machine)')
    parser.add_argument('--font', action='append', default=[], metavar='PATH',
                        help='extra font file (repeatable)')
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    cli.setup_logging()
    try:
        info = generator.make_synthetic_dataset(
            args.out, train_pages=args.train_pages, test_pages=args.test_pages,
            seed=args.seed, workers=args.workers, overwrite=args.overwrite,
            page_height=args.page_height, fonts=args.font, system_fonts=args.system_fonts,
            brush_fonts=args.brush_fonts)
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError,
            PermissionError) as e:
        # Bad arguments: say which, without a traceback (exit status 2, like argparse).
        parser.error(str(e))
    logging.getLogger(__name__).info(
        'made %d train + %d test pages, %d + %d characters, %d of %d classes occurring, in %s',
        info['pages']['train'], info['pages']['test'], info['characters']['train'],
        info['characters']['test'], info['vocabulary']['classes_occurring'],
        info['vocabulary']['classes_in_mapping'], args.out)


if __name__ == '__main__':
    main()
