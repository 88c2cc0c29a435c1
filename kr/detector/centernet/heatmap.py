"""Training targets of CenterNet: Gaussian class heatmaps, sizes and offsets.

Zhou et al., "Objects as Points" (arXiv:1904.07850); the Gaussian radius comes from Law
and Deng, "CornerNet" (arXiv:1808.01244).
"""

import numpy as np

#: Input pixels per output cell (the decoder stops at stride 4).
HEATMAP_STRIDE = 4
#: CornerNet's minimum IoU of a box whose corners moved by the radius.
GAUSSIAN_MIN_OVERLAP = 0.7
#: The Gaussian is drawn out to this many sigmas (exp(-4.5) ~ 0.011 beyond).
GAUSSIAN_EXTENT = 3.0
#: Floor of sigma in cells, so a degenerate (zero-size) box still gets a single peak (the
#: default of ``min_sigma``; the original has no other floor).
MIN_SIGMA = 1e-3


def gaussian_radius(width, height, min_overlap: float = GAUSSIAN_MIN_OVERLAP):
    """The CornerNet Gaussian radius of boxes, *as written in the CornerNet code*.

    CornerNet takes the smallest root of three quadratics ``a r^2 + b r + c = 0`` (both
    corners inside, both outside, one of each) so that corners moved by ``r`` keep IoU
    ``min_overlap``. Its code returns ``(b + sqrt(b^2 - 4ac)) / 2`` for each, without the
    division by ``a`` (``a`` = 1, 4, 4 x min_overlap), so the radius is larger than the
    exact one for the last two. The original solution used this formula and used the
    result directly as the Gaussian's sigma; we keep both on purpose (SPEC section 3 quirk
    (c)): the CenterNet authors note the exact radius matters little, and the detector's
    tuned thresholds were found with these targets.

    Args:
        width: ``(R,)`` box widths (any unit; the radius is in the same unit).
        height: ``(R,)`` box heights.
        min_overlap: IoU to keep.

    Returns:
        ``(R,)`` float64 radii.
    """
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * c1)) / 2
    a2 = 4
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return np.minimum(np.minimum(r1, r2), r3)


def generate_targets(bboxes, labels, n_fg_class: int, shape, stride: int = HEATMAP_STRIDE,
                     min_sigma: float = MIN_SIGMA):
    """Dense CenterNet targets of one image.

    Each box (scaled by ``1 / stride``) puts a Gaussian with peak 1 on its integer centre
    cell ``floor(centre)``, sigma = :func:`gaussian_radius` of its size in cells; a class
    map takes the maximum over its boxes. At the centre cell the size target is the box
    ``(w, h)`` in cells and the offset target is ``centre - floor(centre)``. Boxes whose
    centre cell falls outside the map are skipped; when two boxes share a centre cell the
    later one's size and offset are kept.

    Args:
        bboxes: ``(R, 4)`` float ``x_min y_min x_max y_max`` in input pixels.
        labels: ``(R,)`` int class indices in ``[0, n_fg_class)``.
        n_fg_class: Number of classes.
        shape: ``(h, w)`` of the output map in cells.
        stride: Input pixels per cell.
        min_sigma: Floor of the Gaussians' sigma, in cells (the default only guards
            zero-size boxes; see :data:`MIN_SIGMA`).

    Returns:
        dict of float32 arrays: ``heatmap`` ``(n_fg_class, h, w)`` in ``[0, 1]``, ``size``
        ``(2, h, w)`` and ``offset`` ``(2, h, w)`` (zero off-centre), and ``mask``
        ``(h, w)`` (1 at centre cells).
    """
    h, w = (int(s) for s in shape)
    heatmap = np.zeros((n_fg_class, h, w), dtype=np.float32)
    size = np.zeros((2, h, w), dtype=np.float32)
    offset = np.zeros((2, h, w), dtype=np.float32)
    mask = np.zeros((h, w), dtype=np.float32)
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4) / stride
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(bboxes) == 0:
        return {'heatmap': heatmap, 'size': size, 'offset': offset, 'mask': mask}
    centers = (bboxes[:, :2] + bboxes[:, 2:]) / 2
    cells = np.floor(centers).astype(np.int64)
    box_w = bboxes[:, 2] - bboxes[:, 0]
    box_h = bboxes[:, 3] - bboxes[:, 1]
    sigmas = np.maximum(gaussian_radius(box_w, box_h), min_sigma)
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < w) & (cells[:, 1] >= 0) & (cells[:, 1] < h)
    for k in np.nonzero(inside)[0]:
        cx, cy = cells[k]
        _draw_gaussian(heatmap[labels[k]], cx, cy, sigmas[k])
    idx = np.nonzero(inside)[0]
    cx, cy = cells[idx, 0], cells[idx, 1]
    size[0, cy, cx] = box_w[idx]
    size[1, cy, cx] = box_h[idx]
    offset[:, cy, cx] = (centers[idx] - cells[idx]).T
    mask[cy, cx] = 1
    return {'heatmap': heatmap, 'size': size, 'offset': offset, 'mask': mask}


def _draw_gaussian(plane, cx, cy, sigma):
    """Max a Gaussian of peak 1 at cell ``(cx, cy)`` into the ``(h, w)`` float32 ``plane``."""
    r = int(np.ceil(GAUSSIAN_EXTENT * sigma))
    h, w = plane.shape
    x0, x1 = max(cx - r, 0), min(cx + r + 1, w)
    y0, y1 = max(cy - r, 0), min(cy + r + 1, h)
    gx = np.exp(-((np.arange(x0, x1) - cx) ** 2) / (2 * sigma ** 2))
    gy = np.exp(-((np.arange(y0, y1) - cy) ** 2) / (2 * sigma ** 2))
    np.maximum(plane[y0:y1, x0:x1], np.outer(gy, gx).astype(np.float32),
               out=plane[y0:y1, x0:x1])
