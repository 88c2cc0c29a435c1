"""Reading order of a page's characters: blocks, columns right to left, characters top to
bottom, interlinear ruby kept apart (SPEC section 12).

The page is first cut into blocks by a recursive XY-cut (as NDL 古典籍OCR orders its lines):
at each step the widest empty band of the boxes' x or y projection that is wide enough
splits the characters, a vertical cut read right to left, a horizontal one top to bottom.
A landscape page (a two-page spread) is cut at its gutter first, right page first.

Inside a block each character is linked to the character right below it (same column:
the narrower box's centre inside the wider box's x-range; the nearest one wins, globally
from the cheapest link up), which follows skewed and curved columns and bridges a missing
character. The chains are joined into columns, columns whose characters are much smaller
than the block's are ruby (furigana, interlinear notes) and are attached to the main
column beside them; main columns are read right to left.

Works on ground-truth boxes and on noisy detections alike::

    layout = reading_order(bboxes)          # bboxes: (R, 4) float xyxy page pixels
    layout.order                            # (R,) int64: indices in reading order
    for block in layout.blocks:
        for column in block.columns:
            column.chars, column.ruby       # main characters top to bottom, RubyGroups
"""

import dataclasses

import numpy as np

#: Character size (em) of a page: the median of the boxes' longer sides. Every distance
#: below is in em, so the rules hold at any resolution.
#: Empty band that separates blocks, in em: vertical cuts (between blocks side by side)
#: must be wider than the gap between two columns plus an empty column slot (synthetic
#: pitch 1.35-1.85 em); horizontal cuts (a header, a page number) wider than the largest gap
#: inside a column (0.4 em in the synthetic pages, about 1 em on real ones). A horizontal
#: band no wider than MAX_LINK_GAP with a column's characters on both sides (x-aligned) is a
#: hole left by missed characters, not a cut: a header or page number that close and that
#: well aligned is read as the start or end of that column.
X_CUT_GAP = 2.5
Y_CUT_GAP = 1.5
#: A spread's gutter: a vertical band at least this wide (em) whose centre lies within this
#: share of the page width from the middle cuts a landscape page first.
SPREAD_GUTTER_GAP = 1.0
SPREAD_CENTRE_BAND = 0.2
#: Link from a character to the one below it in the same column: centres at most this share
#: of the wider box's width apart in x, an empty gap of at most MAX_LINK_GAP em (a missing
#: character or two), cost = gap + LINK_DX_WEIGHT x offset (em). The offset weighs little:
#: at 2 a link skipped a flat glyph (a 2 px high stroke) of a synthetic test page.
LINK_MAX_DX = 0.5
MAX_LINK_GAP = 3.0
LINK_DX_WEIGHT = 0.5
#: Links kept per character (its cheapest ones), and rows of the link matrix built at once.
LINK_CANDIDATES = 4
LINK_CHUNK = 512
#: Two pieces of chain are one column when their x-ranges overlap by this share of the
#: narrower one and the lower one's first centre is below the upper one's last centre (on
#: a real page a small cursive け beside the foot of そ took the link to the next character).
SLOT_OVERLAP = 0.5
#: Ruby: a chain whose median character size is under this share of the block's median
#: (synthetic annotations: 0.5-0.65 of the main text; real furigana about half) and that
#: has a main column within RUBY_MAX_DISTANCE em beside it, overlapping it in y.
RUBY_SIZE_RATIO = 0.75
RUBY_MAX_DISTANCE = 2.0
#: A ruby column about equally far from the main columns on either side (closer by less than
#: this, in em) glosses the one on its right, which is read just before it (the synthetic
#: pages' convention; real furigana stand close to their own column, so nearness decides).
RUBY_TIE = 0.25
#: Smallest em in pixels (degenerate boxes must not divide by zero).
MIN_EM = 1.0


@dataclasses.dataclass(frozen=True)
class RubyGroup:
    """Small interlinear characters glossing some characters of a main column.

    Attributes:
        chars: Indices (into the page's boxes) of the ruby characters, top to bottom.
        base: ``(start, stop)``: the glossed characters are ``column.chars[start:stop]``
            (``start == stop`` when none lies beside the group).
        side: ``'right'`` or ``'left'`` of the column: a group on the right is read before
            the column's characters, one on the left after them.
    """
    chars: tuple
    base: tuple
    side: str


@dataclasses.dataclass(frozen=True)
class Column:
    """One main column and the ruby attached to it.

    Attributes:
        chars: Indices of its main characters, top to bottom.
        ruby: :class:`RubyGroup` s in reading order.
    """
    chars: tuple
    ruby: tuple = ()

    @property
    def order(self) -> tuple:
        """All its indices in reading order: right-side ruby, main characters, left-side ruby."""
        right = tuple(i for g in self.ruby if g.side == 'right' for i in g.chars)
        left = tuple(i for g in self.ruby if g.side == 'left' for i in g.chars)
        return right + tuple(self.chars) + left


@dataclasses.dataclass(frozen=True)
class Block:
    """A text block (the main text, a header, a page number, one page of a spread).

    Attributes:
        columns: :class:`Column` s, right to left.
    """
    columns: tuple

    @property
    def order(self) -> tuple:
        """Its indices in reading order."""
        return tuple(i for c in self.columns for i in c.order)


@dataclasses.dataclass(frozen=True)
class Layout:
    """The reading structure of a page's ``R`` characters.

    Attributes:
        blocks: :class:`Block` s in reading order.
        n: ``R``, the number of boxes given (every one appears exactly once).
    """
    blocks: tuple
    n: int

    @property
    def order(self) -> np.ndarray:
        """``(R,)`` int64: the box indices in reading order (ruby included)."""
        return np.asarray([i for b in self.blocks for i in b.order], dtype=np.int64)

    @property
    def ruby(self) -> np.ndarray:
        """``(R,)`` bool, by box index: true for ruby characters."""
        flags = np.zeros(self.n, dtype=bool)
        for b in self.blocks:
            for c in b.columns:
                for g in c.ruby:
                    flags[list(g.chars)] = True
        return flags

    @property
    def block_index(self) -> np.ndarray:
        """``(R,)`` int64, by box index: the block of each character."""
        return self._index(lambda b, c: b)

    @property
    def column_index(self) -> np.ndarray:
        """``(R,)`` int64, by box index: the column of each character inside its block
        (ruby: the column it glosses)."""
        return self._index(lambda b, c: c)

    def _index(self, pick):
        out = np.full(self.n, -1, dtype=np.int64)
        for bi, b in enumerate(self.blocks):
            for ci, c in enumerate(b.columns):
                out[list(c.order)] = pick(bi, ci)
        return out

    @property
    def main_order(self) -> np.ndarray:
        """``(M,)`` int64: the main characters (no ruby) in reading order."""
        return np.asarray([i for b in self.blocks for c in b.columns for i in c.chars],
                          dtype=np.int64)


def reading_order(bboxes, scores=None, image_size=None) -> Layout:
    """Order the characters of a page.

    Args:
        bboxes: ``(R, 4)`` float ``(x_min, y_min, x_max, y_max)`` in page pixels, in any
            order (ground truth or detections).
        scores: ``(R,)`` detection scores, or None. Of two links of equal cost the one to the
            higher-scored box is kept (else the lower index).
        image_size: ``(width, height)`` of the page in pixels, or None. A landscape page is
            taken for a two-page spread and cut at its gutter first.

    Returns:
        :class:`Layout`: every box exactly once.

    Raises:
        ValueError: ``bboxes`` is not ``(R, 4)``, holds a non-finite value, or ``scores`` has
            another length.
    """
    boxes = np.asarray(bboxes, dtype=np.float64)
    if boxes.size == 0:
        return Layout(blocks=(), n=0)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError('bboxes must be (R, 4) xyxy, got shape {}'.format(boxes.shape))
    if not np.isfinite(boxes).all():
        raise ValueError('bboxes hold a non-finite value')
    # a box given as (x2, y2, x1, y1) still covers the same pixels
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]),
                            np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)
    n = len(boxes)
    if scores is None:
        scores = np.zeros(n, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != n:
        raise ValueError('scores has {} values for {} boxes'.format(len(scores), n))
    em = _em(boxes)
    spread = None
    if image_size is not None and float(image_size[0]) > float(image_size[1]):
        spread = float(image_size[0])
    blocks = []
    for idx in _xy_cut(np.arange(n), boxes, em, spread):
        columns = _block_columns(idx, boxes, scores)
        if columns:
            blocks.append(Block(columns=tuple(columns)))
    layout = Layout(blocks=tuple(blocks), n=n)
    assert sorted(layout.order.tolist()) == list(range(n))
    return layout


def _em(boxes) -> float:
    """Median longer side of the boxes, in pixels."""
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return max(MIN_EM, float(np.median(sides)))


def _gaps(lo, hi):
    """Empty bands ``(start, end)`` between the union of the intervals ``[lo, hi]``."""
    order = np.lexsort((hi, lo))
    gaps = []
    reach = hi[order[0]]
    for k in order[1:]:
        if lo[k] > reach:
            gaps.append((float(reach), float(lo[k])))
        reach = max(reach, hi[k])
    return gaps


def _xy_cut(idx, boxes, em, spread_width=None):
    """Blocks (index arrays) of ``idx`` in reading order, by recursive XY-cut."""
    if len(idx) <= 1:
        return [idx]
    b = boxes[idx]
    x_gaps = _gaps(b[:, 0], b[:, 2])
    cut = None
    if spread_width is not None:
        middle = spread_width / 2.0
        central = [(e - s, s, e) for s, e in x_gaps if e - s >= SPREAD_GUTTER_GAP * em
                   and abs((s + e) / 2.0 - middle) <= SPREAD_CENTRE_BAND * spread_width]
        if central:
            _, s, e = max(central)
            cut = ('x', (s + e) / 2.0)
    if cut is None:
        best = 1.0
        y_gaps = [g for g in _gaps(b[:, 1], b[:, 3]) if not _inside_column(b, g, em)]
        for axis, gaps, need in (('x', x_gaps, X_CUT_GAP), ('y', y_gaps, Y_CUT_GAP)):
            for s, e in gaps:
                ratio = (e - s) / (need * em)
                if ratio >= best:
                    best, cut = ratio, (axis, (s + e) / 2.0)
    if cut is None:
        return [idx]
    axis, at = cut
    if axis == 'x':
        # a vertical cut: the right part is read first
        first, second = idx[b[:, 0] >= at], idx[b[:, 0] < at]
    else:
        first, second = idx[b[:, 1] < at], idx[b[:, 1] >= at]
    # the halves are cut again on their own, never again as a spread
    return _xy_cut(first, boxes, em) + _xy_cut(second, boxes, em)


def _inside_column(b, gap, em) -> bool:
    """Whether a horizontal band is a hole in a column (missing characters): a box ending at
    its top and one starting at its bottom would link (:func:`_chains`)."""
    s, e = gap
    if e - s > MAX_LINK_GAP * em:
        return False
    above, below = b[b[:, 3] == s], b[b[:, 1] == e]
    w_a = np.maximum(above[:, 2] - above[:, 0], MIN_EM)
    w_b = np.maximum(below[:, 2] - below[:, 0], MIN_EM)
    dx = np.abs((above[:, None, 0] + above[:, None, 2]) - (below[None, :, 0] + below[None, :, 2]))
    return bool((dx / 2.0 <= LINK_MAX_DX * np.maximum(w_a[:, None], w_b[None, :])).any())


def _chains(idx, boxes, scores, em):
    """Split ``idx`` into column pieces: lists of indices, top to bottom."""
    b = boxes[idx]
    n = len(idx)
    w = np.maximum(b[:, 2] - b[:, 0], MIN_EM)
    cx = (b[:, 0] + b[:, 2]) / 2.0
    cy = (b[:, 1] + b[:, 3]) / 2.0
    s = scores[idx]
    ii, jj, cost = [], [], []
    # rows in chunks, keeping each character's LINK_CANDIDATES cheapest links: memory and
    # time stay linear in R for the thousands of boxes of a low detection threshold
    for lo in range(0, n, LINK_CHUNK):
        rows = np.arange(lo, min(n, lo + LINK_CHUNK))
        dx = np.abs(cx[None, :] - cx[rows, None])
        gap = b[None, :, 1] - b[rows, None, 3]
        ok = ((cy[None, :] - cy[rows, None] > 0)
              & (dx <= LINK_MAX_DX * np.maximum(w[rows, None], w[None, :]))
              & (gap <= MAX_LINK_GAP * em))
        c = np.where(ok, np.maximum(gap, 0.0) / em + LINK_DX_WEIGHT * dx / em, np.inf)
        k = min(LINK_CANDIDATES, n)
        best = np.argpartition(c, k - 1, axis=1)[:, :k] if k < n else np.tile(
            np.arange(n), (len(rows), 1))
        r, j = np.repeat(rows, best.shape[1]), best.reshape(-1)
        v = c[r - lo, j]
        keep = np.isfinite(v)
        ii.append(r[keep])
        jj.append(j[keep])
        cost.append(v[keep])
    ii, jj, cost = np.concatenate(ii), np.concatenate(jj), np.concatenate(cost)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    for k in np.lexsort((jj, ii, -s[jj], cost)):
        i, j = ii[k], jj[k]
        if nxt[i] < 0 and prv[j] < 0:
            nxt[i], prv[j] = j, i
    chains = []
    for start in np.flatnonzero(prv < 0):
        chain, k = [], start
        while k >= 0:
            chain.append(int(idx[k]))
            k = nxt[k]
        chains.append(chain)
    return chains


@dataclasses.dataclass
class _Slot:
    chains: list
    lo: float
    hi: float
    top: float
    bottom: float
    x: float = 0.0
    ruby: bool = False


def _slots(chains, boxes, ruby):
    """Join chain pieces stacked in one x-range into columns (:class:`_Slot`)."""
    if not chains:
        return []
    chains = sorted(chains, key=lambda c: (boxes[c, 1].min(), c[0]))
    m = len(chains)
    # per slot: x-range of its last piece and centre y of its last character (arrays, so that
    # the thousands of pieces of a noisy page stay fast)
    lo, hi, last = np.zeros(m), np.zeros(m), np.zeros(m)
    members = []
    for chain in chains:
        b = boxes[chain]
        c_lo, c_hi = float(np.median(b[:, 0])), float(np.median(b[:, 2]))
        first_cy = float(b[0, 1] + b[0, 3]) / 2.0
        k = len(members)
        best = -1
        if k:
            overlap = np.minimum(c_hi, hi[:k]) - np.maximum(c_lo, lo[:k])
            ratio = overlap / np.maximum(np.minimum(c_hi - c_lo, hi[:k] - lo[:k]), MIN_EM)
            ratio[first_cy <= last[:k]] = -np.inf
            if ratio.max() >= SLOT_OVERLAP:
                best = int(np.argmax(ratio))
        if best < 0:
            best = k
            members.append([])
        members[best].append(chain)
        lo[best], hi[best] = c_lo, c_hi
        last[best] = float(b[-1, 1] + b[-1, 3]) / 2.0
    slots = []
    for pieces in members:
        flat = [i for c in pieces for i in c]
        b = boxes[flat]
        slots.append(_Slot(pieces, lo=float(np.median(b[:, 0])), hi=float(np.median(b[:, 2])),
                           top=float(b[:, 1].min()), bottom=float(b[:, 3].max()),
                           x=float(np.median((b[:, 0] + b[:, 2]) / 2.0)), ruby=ruby))
    return slots


def _block_columns(idx, boxes, scores):
    """The :class:`Column` s of one block, right to left."""
    em = _em(boxes[idx])
    chains = _chains(idx, boxes, scores, em)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    small = [float(np.median(sides[c])) < RUBY_SIZE_RATIO * em for c in chains]
    main = _slots([c for c, s in zip(chains, small) if not s], boxes, False)
    ruby = _slots([c for c, s in zip(chains, small) if s], boxes, True)
    attached = {id(m): [] for m in main}
    for r in ruby:
        host = _host(r, main, em)
        if host is None:
            r.ruby = False
            main.append(r)
            attached[id(r)] = []
        else:
            attached[id(host)].append(r)
    columns = []
    for m in sorted(main, key=lambda s: (-s.x, s.top)):
        chars = [i for c in m.chains for i in c]
        groups = []
        for r in sorted(attached[id(m)], key=lambda s: (-s.x, s.top)):
            side = 'right' if r.x > m.x else 'left'
            for chain in r.chains:
                groups.append((side, chain))
        columns.append(Column(chars=tuple(chars), ruby=_ruby_groups(groups, chars, boxes)))
    return columns


def _host(ruby_slot, main, em):
    """The main column a ruby column glosses, or None when none stands beside it."""
    candidates = []
    for m in main:
        if min(m.bottom, ruby_slot.bottom) - max(m.top, ruby_slot.top) <= 0:
            continue
        distance = max(m.lo - ruby_slot.hi, ruby_slot.lo - m.hi, 0.0) / em
        if distance <= RUBY_MAX_DISTANCE:
            candidates.append((distance, -m.x, m))
    if not candidates:
        return None
    candidates.sort(key=lambda t: (t[0], t[1]))
    nearest = candidates[0][0]
    # about equally near: the column on the right (read just before the ruby)
    close = [t for t in candidates if t[0] - nearest < RUBY_TIE]
    return max(close, key=lambda t: t[2].x)[2]


def _ruby_groups(groups, chars, boxes):
    """:class:`RubyGroup` s with the span of main characters each one glosses."""
    cy = (boxes[chars, 1] + boxes[chars, 3]) / 2.0 if chars else np.zeros(0)
    out = []
    for side, chain in groups:
        top, bottom = boxes[chain, 1].min(), boxes[chain, 3].max()
        beside = np.flatnonzero((cy >= top) & (cy <= bottom))
        if len(beside):
            base = (int(beside[0]), int(beside[-1]) + 1)
        elif len(cy):
            k = int(np.argmin(np.abs(cy - (top + bottom) / 2.0)))
            base = (k, k + 1)
        else:
            base = (0, 0)
        out.append(RubyGroup(chars=tuple(chain), base=base, side=side))
    return tuple(out)
