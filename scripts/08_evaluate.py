#!/usr/bin/env python
"""Score a submission CSV against a solution CSV with the competition's F1 metric.

    python scripts/08_evaluate.py submission.csv solution.csv [--pages-out pages.csv]

The last line on stdout is a JSON object with ``f1, precision, recall, tp, fp, fn``;
log messages go to stderr. ``--pages-out`` writes the per-page counts (``image_id, tp, fp, fn``).
"""

import argparse
import json
import os
import sys

from kr import cli
from kr import fileio
from kr.evaluation import kuzushiji_f1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('submission', help='submission CSV: image_id,labels with "U+XXXX x y" triples')
    p.add_argument('solution', help='solution CSV: image_id,labels with "U+XXXX x y w h" '
                                    'quintuples (train.csv format)')
    p.add_argument('--pages-out', default=None,
                   help='write the per-page counts (image_id,tp,fp,fn) to this CSV')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging()
    try:
        result = kuzushiji_f1(args.submission, args.solution)
    except (ValueError, FileNotFoundError) as e:
        sys.exit('error: {}'.format(e))
    if args.pages_out:
        parent = os.path.dirname(os.path.abspath(args.pages_out))
        os.makedirs(parent, exist_ok=True)
        with fileio.atomic_write(args.pages_out, newline='') as f:
            result.pages.to_csv(f, index=False)
    print(json.dumps(result.as_dict()))


if __name__ == '__main__':
    main()
