"""Draw a page with its ground truth, or a submission's predictions, to a PNG.

    python scripts/09_visualize.py --data-dir DIR --image-id ID --out page.png
    python scripts/09_visualize.py --data-dir DIR --image-id ID --out page.png \
        --submission results/submission/submission.csv

With --submission, a labelled page (train, or a synthetic test page) is drawn as the
TP / FP / FN view of the competition metric: matched ground truth and predictions in green,
misses (FN) as orange boxes, wrong or duplicate predictions (FP) as red points; an
unlabelled page shows the predicted points and characters.
"""

import argparse
import os
import sys

from kr import cli
from kr.visualization import DEFAULT_MAX_SIDE
from kr.visualization import save_ground_truth
from kr.visualization import save_predictions


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], parents=[cli.data_args()])
    p.add_argument('--image-id', required=True, help='page to draw (train or test page)')
    p.add_argument('--out', required=True, help='PNG (or PDF, JPG) file to write')
    p.add_argument('--submission', default=None,
                   help='draw this submission\'s predictions (TP/FP/FN view on labelled pages)')
    p.add_argument('--no-chars', action='store_true', help='boxes only, no characters')
    p.add_argument('--max-side', type=int, default=DEFAULT_MAX_SIDE,
                   help='longest side of the picture in pixels (default: %(default)s)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging()
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    try:
        if args.submission:
            save_predictions(data_dir=args.data_dir, image_id=args.image_id,
                             submission=args.submission, out=args.out, max_side=args.max_side)
        else:
            save_ground_truth(data_dir=args.data_dir, image_id=args.image_id, out=args.out,
                              with_chars=not args.no_chars, max_side=args.max_side)
    except (FileNotFoundError, ValueError) as e:
        sys.exit('error: {}'.format(e))


if __name__ == '__main__':
    main()
