"""Pictures of pages: boxes, points and Japanese characters drawn with matplotlib.

The characters are drawn with the IPAexGothic font that japanize-matplotlib bundles, so
the pictures need no font installed on the system.
"""

import logging

import numpy as np

from kr import fileio
from kr.datasets.image import to_array
from kr.datasets.kuzushiji import KuzushijiPageDataset
from kr.datasets.unicode_mapping import KuzushijiUnicodeMapping

logger = logging.getLogger(__name__)

#: Longest side of a saved picture in pixels: a 2,400 x 3,900 page is drawn at about half
#: size, enough to read the characters beside the boxes.
DEFAULT_MAX_SIDE = 2000
#: Colours of ground truth, predictions, and of the TP / FP / FN view.
GT_COLOR = '#1f77b4'
PRED_COLOR = '#d62728'
TP_COLOR = '#2ca02c'
FP_COLOR = '#d62728'
FN_COLOR = '#ff7f0e'
#: Character size assumed for points drawn without boxes, as a fraction of the longer page
#: side (real pages: about 100 px characters on 3,900 px).
CHAR_SIZE_RATIO = 0.025


def _figure(image, max_side, dpi):
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    import japanize_matplotlib  # NOQA: registers IPAexGothic and makes it the default font
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    fig = plt.figure(figsize=(w * scale / dpi, h * scale / dpi), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(image)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis('off')
    return fig, ax, scale


def draw_page(image, bboxes=None, texts=None, colors=GT_COLOR, points=None, point_texts=None,
              point_colors=PRED_COLOR, title: str = None, max_side: int = DEFAULT_MAX_SIDE,
              dpi: int = 100, linewidth: float = 1.0):
    """Draw a page with boxes and/or points and their characters.

    Args:
        image: PIL image or ``(H, W, 3)`` uint8 RGB array.
        bboxes: ``(R, 4)`` xyxy boxes in page pixels, or None.
        texts: R strings written beside the boxes (the characters), or None.
        colors: One matplotlib colour or R of them.
        points: ``(P, 2)`` ``(x, y)`` points in page pixels (a submission's centres), or None.
        point_texts: P strings written beside the points, or None.
        point_colors: One colour or P of them.
        title: Written at the top left of the page.
        max_side: Longest side of the figure in pixels; the page is scaled down to fit.
        dpi: Figure resolution.
        linewidth: Box line width in points.

    Returns:
        matplotlib.figure.Figure: Close it with ``matplotlib.pyplot.close(fig)`` when done.
    """
    from matplotlib.patches import Rectangle
    image = to_array(image)
    fig, ax, scale = _figure(image, max_side, dpi)
    px_to_pt = scale * 72.0 / dpi

    def per_item(value, n):
        return [value] * n if isinstance(value, str) or value is None else list(value)

    if bboxes is not None and len(bboxes):
        bboxes = np.asarray(bboxes, dtype=np.float64)
        cols = per_item(colors, len(bboxes))
        for i, (x1, y1, x2, y2) in enumerate(bboxes):
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=cols[i],
                                   linewidth=linewidth))
            if texts is not None:
                size = max(4.0, 0.7 * np.sqrt(max((y2 - y1) * (x2 - x1), 1.0)) * px_to_pt)
                ax.text(x2 + 2, (y1 + y2) / 2, texts[i], color=cols[i], fontsize=size,
                        va='center', ha='left', alpha=0.9)
    if points is not None and len(points):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        cols = per_item(point_colors, len(points))
        # markers and labels follow the page's character size (the boxes' when drawn)
        if bboxes is not None and len(bboxes):
            char_px = float(np.median(np.sqrt(np.prod(bboxes[:, 2:] - bboxes[:, :2], axis=1))))
        else:
            char_px = CHAR_SIZE_RATIO * max(image.shape[:2])
        radius_pt = max(1.0, 0.12 * char_px * px_to_pt)
        ax.scatter(points[:, 0], points[:, 1], s=(2 * radius_pt) ** 2, c=cols, marker='o',
                   linewidths=0)
        if point_texts is not None:
            size = max(4.0, 0.6 * char_px * px_to_pt)
            for (x, y), t, c in zip(points, point_texts, cols):
                ax.text(x + 0.25 * char_px, y, t, color=c, fontsize=size, va='center',
                        ha='left')
    if title:
        ax.text(0.01, 0.995, title, transform=ax.transAxes, va='top', ha='left', fontsize=10,
                color='black', bbox={'facecolor': 'white', 'alpha': 0.7, 'linewidth': 0})
    return fig


def save_figure(fig, path: str) -> None:
    """Save ``fig`` to ``path`` (format from the extension) atomically and close it."""
    import matplotlib.pyplot as plt
    try:
        with fileio.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=fig.dpi)
    finally:
        plt.close(fig)
    logger.info('wrote %s', path)


def save_page(path: str, image, **kwargs) -> None:
    """:func:`draw_page` then :func:`save_figure` (keyword arguments as in draw_page)."""
    save_figure(draw_page(image, **kwargs), path)


def page_ground_truth(data_dir: str, image_id: str):
    """Find a page in train.csv (or among the test pages) of ``data_dir``.

    Returns:
        tuple: ``(image, bboxes (R, 4) float32 xyxy, unicodes, labeled)``; ``labeled`` is
        false for a test page without ground truth (real test data).

    Raises:
        ValueError: ``image_id`` is in neither split (the message names it and the folder).
    """
    for split in ('trainval', 'test'):
        try:
            ds = KuzushijiPageDataset(data_dir, split)
        except FileNotFoundError:
            continue
        if image_id in ds.ids:
            item = ds.get_example(ds.ids.index(image_id))
            return item['image'], item['bboxes'], item['unicodes'], ds.labeled
    raise ValueError('image_id {} is neither in train.csv nor among the test pages of {}'.format(
        image_id, data_dir))


def save_ground_truth(data_dir: str, image_id: str, out: str, with_chars: bool = True,
                      max_side: int = DEFAULT_MAX_SIDE) -> int:
    """Draw a page's ground-truth boxes and characters to ``out``; returns the box count."""
    image, bboxes, unicodes, _ = page_ground_truth(data_dir, image_id)
    texts = None
    if with_chars:
        mapping = KuzushijiUnicodeMapping(data_dir)
        texts = [display_char(u, mapping) for u in unicodes]
    save_page(out, image, bboxes=bboxes, texts=texts, colors=GT_COLOR, max_side=max_side,
              title='{} ({} characters)'.format(image_id, len(bboxes)))
    return len(bboxes)


def display_char(unicode: str, mapping=None) -> str:
    """The character of a class code, to draw: from ``mapping`` when it has it, else the code
    point itself, else the code as written (``'?'``, an unknown code)."""
    if mapping is not None and unicode in mapping:
        return mapping.unicode_to_char(unicode)
    try:
        return chr(int(unicode[2:], 16))
    except ValueError:
        return unicode


def draw_scored_page(image, gt_unicodes, gt_boxes, pred_unicodes, pred_points, match,
                     mapping=None, title: str = None, max_side: int = DEFAULT_MAX_SIDE):
    """The TP / FP / FN view of a scored page.

    Ground-truth boxes that a prediction matched (true positives) are green, those left
    unmatched (misses, false negatives) orange; predicted points are green when they matched
    and red otherwise (false positives, including duplicates). Each box carries its true
    character and each point its predicted one.

    Args:
        image: PIL image or ``(H, W, 3)`` uint8 RGB array.
        gt_unicodes: N ground-truth codes.
        gt_boxes: ``(N, 4)`` xyxy ground-truth boxes in page pixels.
        pred_unicodes: P predicted codes.
        pred_points: ``(P, 2)`` predicted points ``(x, y)`` in page pixels.
        match: ``(N,)`` index of the prediction matched to each box, or -1
            (:attr:`kr.evaluation.PageScore.match`).
        mapping: :class:`~kr.datasets.KuzushijiUnicodeMapping` for the characters
            (without it, the code point itself is drawn).
        title: Text at the top left (default: the TP / FP / FN counts).
        max_side: See :func:`draw_page`.

    Returns:
        matplotlib.figure.Figure
    """
    match = np.asarray(match, dtype=np.int64)
    used = np.zeros(len(pred_unicodes), dtype=bool)
    used[match[match >= 0]] = True
    tp, fn, fp = int((match >= 0).sum()), int((match < 0).sum()), int((~used).sum())
    if title is None:
        title = 'TP {} (green)  FP {} (red)  FN {} (orange)'.format(tp, fp, fn)
    return draw_page(
        image, bboxes=gt_boxes, texts=[display_char(u, mapping) for u in gt_unicodes],
        colors=[TP_COLOR if m >= 0 else FN_COLOR for m in match],
        points=pred_points, point_texts=[display_char(u, mapping) for u in pred_unicodes],
        point_colors=[TP_COLOR if u else FP_COLOR for u in used], title=title, max_side=max_side)


def save_predictions(data_dir: str, image_id: str, submission: str, out: str,
                     max_side: int = DEFAULT_MAX_SIDE) -> dict:
    """Draw a submission's characters on a page, as a TP / FP / FN view when it is labelled.

    Args:
        data_dir: Kaggle-layout folder holding the page.
        image_id: Page to draw.
        submission: Submission CSV (script 07) with a row for ``image_id``.
        out: Picture to write.
        max_side: See :func:`draw_page`.

    Returns:
        dict: ``{'predictions': P}`` plus ``tp``, ``fp``, ``fn`` when the page is labelled.

    Raises:
        ValueError: ``image_id`` missing from the submission or the data folder.
    """
    from kr.evaluation import parse_submission_labels
    from kr.evaluation import score_page
    from kr.submission import read_submission
    rows = read_submission(submission)
    if image_id not in rows:
        raise ValueError('image_id {} has no row in {}'.format(image_id, submission))
    pred_unicodes, points = parse_submission_labels(rows[image_id], image_id, submission)
    image, bboxes, unicodes, labeled = page_ground_truth(data_dir, image_id)
    mapping = KuzushijiUnicodeMapping(data_dir)
    result = {'predictions': len(pred_unicodes)}
    if labeled:
        boxes = np.asarray(bboxes, dtype=np.float64)
        score = score_page(pred_unicodes, points, unicodes, boxes)
        result.update(tp=score.tp, fp=score.fp, fn=score.fn)
        fig = draw_scored_page(image, unicodes, boxes, pred_unicodes, points, score.match,
                               mapping=mapping, max_side=max_side,
                               title='{}: TP {} (green)  FP {} (red)  FN {} (orange)'.format(
                                   image_id, score.tp, score.fp, score.fn))
    else:
        fig = draw_page(image, points=points,
                        point_texts=[display_char(u, mapping) for u in pred_unicodes],
                        title='{} ({} predicted characters)'.format(image_id, len(points)),
                        max_side=max_side)
    save_figure(fig, out)
    return result
