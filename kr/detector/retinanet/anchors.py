"""RetinaNet's anchors: a few shapes per cell of each pyramid level P3-P7 (SPEC section 11).

Lin et al., "Focal Loss for Dense Object Detection" (arXiv:1708.02002, section 4): level
``l`` has stride ``2 ** l``; its anchors have sides ``anchor_scale x 2 ** l x 2 ** (i /
scales_per_octave)`` for ``i < scales_per_octave`` and aspect ratios ``h / w``. The paper
and the seed's TF config (``ssd_resnet101_v1_fpn_shared_box_predictor_oid_512x512``) use
``anchor_scale`` 4, 2 scales per octave in the config (3 in the paper) and ratios 0.5, 1, 2
on P3-P7: anchors of 32 to 724 px. Characters of a page squeezed to 512 x 512 are 8-20 px
high, so our default ``anchor_scale`` is 2 (16 to 362 px; see
:data:`CHARACTER_ANCHOR_SCALE`).

Anchors are ``x_min y_min x_max y_max`` in network-input pixels, in the order of
:func:`kr.detector.anchors.grid_anchors` (row-major cells, anchor-minor) per level, levels
from the finest.
"""

import numpy as np

from kr.detector.anchors import anchor_shapes
from kr.detector.anchors import grid_anchors

#: The pyramid levels of RetinaNet (paper and TF config): P3 (stride 8) to P7 (stride 128).
MIN_LEVEL = 3
MAX_LEVEL = 7
#: Lowest and highest levels this implementation builds (P2 is a lateral of C2; P8 and up
#: would be coarser than any page needs).
LEVEL_RANGE = (2, 7)
#: Anchor side over the level's stride of the paper and the TF config.
TF_ANCHOR_SCALE = 4.0
#: Our default: the smallest anchor is 16 px at P3, for the 10-18 x 14-27 px characters of
#: a page squeezed to 512 x 512. On 10 demo pages (``benchmarks/retinanet_anchor_coverage.py``)
#: 86% of the characters then have an anchor of IoU >= 0.5 (median best IoU 0.61); with the
#: TF config's scale 4 (32 px) only 1.5% do (median 0.25), the rest being learned from their
#: one forced match. On half-page patches at 512 (characters 25-53 px) scale 4 fits: 98%
#: (median 0.75).
CHARACTER_ANCHOR_SCALE = 2.0
#: Anchor scales per octave (intermediate sides ``2 ** (i / n)``) of the TF config.
SCALES_PER_OCTAVE = 2
#: Aspect ratios ``h / w`` of the TF config (and the paper): the set 0.5, 1, 2.
ANCHOR_RATIOS = '0.5,1,2'


def parse_ratios(ratios) -> tuple:
    """Aspect ratios from ``'0.5,1,2'`` (a flag or an ``args.json`` value) or a sequence.

    Raises:
        ValueError: Something that is not a comma-separated list of positive numbers.
    """
    if isinstance(ratios, str):
        try:
            values = tuple(float(r) for r in ratios.split(','))
        except ValueError:
            raise ValueError('anchor ratios must be comma-separated numbers such as '
                             '"0.5,1,2", got {!r}'.format(ratios)) from None
    else:
        values = tuple(float(r) for r in ratios)
    if not values or any(not r > 0 for r in values):
        raise ValueError('anchor ratios must be positive numbers, got {!r}'.format(ratios))
    return values


def check_levels(min_level: int, max_level: int) -> None:
    """Raise ValueError unless ``min_level..max_level`` lies in :data:`LEVEL_RANGE`."""
    low, high = LEVEL_RANGE
    if not low <= min_level <= max_level <= high:
        raise ValueError('pyramid levels must satisfy {} <= min_level <= max_level <= {}, got '
                         '{} and {}'.format(low, high, min_level, max_level))


def level_anchor_sizes(level: int, anchor_scale: float = CHARACTER_ANCHOR_SCALE,
                       scales_per_octave: int = SCALES_PER_OCTAVE) -> np.ndarray:
    """The square-anchor sides of a level: ``anchor_scale 2 ** level 2 ** (i / n)``.

    Returns:
        ``(scales_per_octave,)`` float64 pixels.

    Raises:
        ValueError: A scale that is not positive or fewer than one scale per octave.
    """
    if not anchor_scale > 0:
        raise ValueError('anchor_scale must be positive, got {}'.format(anchor_scale))
    if int(scales_per_octave) != scales_per_octave or scales_per_octave < 1:
        raise ValueError('scales_per_octave must be a positive integer, got {}'.format(
            scales_per_octave))
    octave = 2.0 ** (np.arange(int(scales_per_octave)) / scales_per_octave)
    return anchor_scale * 2.0 ** level * octave


def level_anchor_shapes(level: int, anchor_scale: float = CHARACTER_ANCHOR_SCALE,
                        scales_per_octave: int = SCALES_PER_OCTAVE,
                        ratios=ANCHOR_RATIOS) -> np.ndarray:
    """``(A, 2)`` float64 ``(w, h)`` of the anchors of one cell of ``level``, size-major
    (:func:`kr.detector.anchors.anchor_shapes`), ``A = scales_per_octave x len(ratios)``."""
    return anchor_shapes(level_anchor_sizes(level, anchor_scale, scales_per_octave),
                         parse_ratios(ratios))


def pyramid_anchors(level_shapes, min_level: int = MIN_LEVEL,
                    anchor_scale: float = CHARACTER_ANCHOR_SCALE,
                    scales_per_octave: int = SCALES_PER_OCTAVE, ratios=ANCHOR_RATIOS, xp=np):
    """The anchors of every level of a pyramid.

    Args:
        level_shapes: ``(H_l, W_l)`` of each level's feature map, from ``min_level`` up.
        min_level: Level of the first map (its stride is ``2 ** min_level``).
        anchor_scale: Anchor side over the stride.
        scales_per_octave: Anchor sides per level.
        ratios: Aspect ratios ``h / w`` (``'0.5,1,2'`` or a sequence).
        xp: ``numpy`` or ``cupy``.

    Returns:
        list of ``(H_l * W_l * A, 4)`` float32 xyxy anchors, one per level, centred at
        ``((x + 0.5) 2 ** l, (y + 0.5) 2 ** l)``.
    """
    return [grid_anchors(h, w, 2.0 ** level,
                         level_anchor_shapes(level, anchor_scale, scales_per_octave, ratios),
                         xp)
            for level, (h, w) in enumerate(level_shapes, start=min_level)]
