"""Draw a page with its ground-truth boxes and characters to a PNG.

    python scripts/09_visualize.py --data-dir DIR --image-id ID --out page.png
"""

import argparse
import os
import sys

from kr import cli
from kr.visualization import DEFAULT_MAX_SIDE
from kr.visualization import save_ground_truth


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], parents=[cli.data_args()])
    p.add_argument('--image-id', required=True, help='page to draw (train or test page)')
    p.add_argument('--out', required=True, help='PNG (or PDF, JPG) file to write')
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
        save_ground_truth(data_dir=args.data_dir, image_id=args.image_id, out=args.out,
                          with_chars=not args.no_chars, max_side=args.max_side)
    except (FileNotFoundError, ValueError) as e:
        sys.exit('error: {}'.format(e))


if __name__ == '__main__':
    main()
