"""Speed of the synthetic dataset generator: 100 pages of about 1,000 x 1,500 px.

Usage (from the repository root, with ``kr`` installed or ``PYTHONPATH=.``)::

    python benchmarks/synthetic_speed.py [--pages 100] [--workers 2] [--page-height 1500]

Prints pages per second, wall-clock seconds, CPU seconds (this process and its workers:
the figure to compare when other jobs share the machine), the number of classes occurring
and the characters in total. The pages go to a temporary folder that is removed afterwards.
"""

import argparse
import os
import resource
import tempfile
import time

from kr.synthetic import make_synthetic_dataset


def _cpu_seconds():
    """User + system CPU time of this process and its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pages', type=int, default=100,
                        help='pages in all (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=2, help='processes (default: %(default)s)')
    parser.add_argument('--page-height', type=int, default=1500,
                        help='page height in pixels (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    test_pages = max(1, args.pages // 5)
    with tempfile.TemporaryDirectory() as tmp:
        cpu_start = _cpu_seconds()
        start = time.perf_counter()
        info = make_synthetic_dataset(os.path.join(tmp, 'synthetic'),
                                      train_pages=args.pages - test_pages, test_pages=test_pages,
                                      seed=args.seed, workers=args.workers,
                                      page_height=args.page_height)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
    characters = info['characters']['train'] + info['characters']['test']
    print('pages: {}  workers: {}  page height: {}'.format(args.pages, args.workers,
                                                           args.page_height))
    print('seconds: {:.1f}  pages/s: {:.2f}  cpu seconds: {:.1f}'.format(
        seconds, args.pages / seconds, cpu))
    print('classes occurring: {} of {}  characters: {} ({:.0f} per page)'.format(
        info['vocabulary']['classes_occurring'], info['vocabulary']['classes_in_mapping'],
        characters, characters / args.pages))


if __name__ == '__main__':
    main()
