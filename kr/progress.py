"""A progress bar on a terminal, log lines elsewhere: the one progress helper of the library.

Long loops (cutting crops, recognising pages, rendering a synthetic set) wrap their
iterable in :func:`progress`. It lives on the bottom floor, beside the file helpers, so that
every module may use it; :mod:`kr.cli` is the top floor and is never imported by the library.
"""

import logging
import sys
import time

logger = logging.getLogger(__name__)


def progress(iterable, total: int = None, desc: str = '', log_every: int = None):
    """Iterate with a progress bar on a terminal, or ``desc i/n`` log lines otherwise.

    Args:
        iterable: What to iterate over.
        total: Number of items (defaults to ``len(iterable)`` when it has one).
        desc: Label of the bar or the log lines.
        log_every: Log every this many items when not on a terminal (default: about 20 lines).
    """
    if total is None and hasattr(iterable, '__len__'):
        total = len(iterable)
    if sys.stderr.isatty():
        from tqdm import tqdm
        yield from tqdm(iterable, total=total, desc=desc, dynamic_ncols=True)
        return
    if log_every is None:
        log_every = max(1, (total or 100) // 20)
    start = time.time()
    for i, item in enumerate(iterable, 1):
        yield item
        if i % log_every == 0 or i == total:
            logger.info('%s %d/%s (%.1f s)', desc, i, total if total is not None else '?',
                        time.time() - start)
