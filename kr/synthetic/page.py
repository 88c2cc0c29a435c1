"""One synthetic page: vertical columns of brush-like glyphs on old paper.

Layout follows the real pages of the Kaggle set: columns of characters written top to
bottom, columns read right to left, inside a text block that is often framed by ruled
lines, sometimes with column rules, small annotation columns, short columns where a
paragraph ends, unlabelled marks, ligature strokes between kana, bleed-through from the
other side of the sheet, stains, and the dark surroundings of a photographed book.

What the five real pages in the project's sample show (a popular Edo-period book, one page
each, photographed on a dark ground with the leaves beneath showing at the edge) and the
generator draws: brush and cursive hands (fonts of :mod:`kr.synthetic.fonts`); small
unlabelled ruby (furigana) right of the main column beside most kanji, one to four kana at
about a third of the main size, which the Kaggle labels leave out; a wide column pitch that
leaves room for it; kana with long final strokes (し, く, へ...) up to about twice the em
high; a deep head margin above the frame; faint mirrored text of the other side.

A book shares one :class:`BookStyle` (paper, ink, font, character size, frame); each page
varies it a little. Everything random comes from the generator passed in.
"""

import dataclasses

import cv2
import numpy as np

from kr.datasets.labels import format_labels
from kr.synthetic import fonts
from kr.synthetic import paper as paper_lib
from kr.synthetic import render
from kr.synthetic.vocabulary import Vocabulary
from kr.synthetic.vocabulary import is_kana
from kr.synthetic.vocabulary import make_vocabulary
from kr.synthetic.vocabulary import unicode_of

#: Page width / height range (real pages: about 2,400 x 3,900, i.e. 0.62; spreads vary).
PAGE_ASPECT_RANGE = (0.62, 0.71)
#: Em size of a main-column character as a share of the page height (real pages: glyphs of
#: about 60-150 px on 3,900 px pages, i.e. 1.5-4 %).
CHAR_SIZE_RANGE = (0.028, 0.05)
#: Smallest em size in pixels, so that tiny test pages still get legible glyphs.
MIN_CHAR_SIZE = 8.0
#: Column pitch (centre to centre) as a multiple of the em size.
COLUMN_PITCH_RANGE = (1.35, 1.85)
#: Em size of annotation (interlinear note) columns relative to the main text.
ANNOTATION_SCALE_RANGE = (0.5, 0.65)
#: Annotations come in short groups (readings beside a word): chance of a break after a
#: character, and the length of the break in annotation em units.
ANNOTATION_BREAK_RATE = 0.35
ANNOTATION_BREAK_RANGE = (2.0, 8.0)
#: Share of pages without any text (real training set: 276 of 3,881 pages, 7 %; covers,
#: blank leaves and pictures). The brief for the synthetic set asks for about 3 %.
EMPTY_PAGE_RATE = 0.03
#: Kana are written a little smaller than kanji.
KANA_SCALE = 0.88
#: Standard deviation of the log size of one character around its column's size.
CHAR_SIZE_LOG_STD = 0.09
#: Vertical gap between neighbours in em units; a few neighbours overlap slightly.
GAP_RANGE = (0.02, 0.38)
OVERLAP_RANGE = (-0.12, 0.0)
OVERLAP_RATE = 0.1
MAX_OVERLAP = 0.3
#: Horizontal jitter of a character around its column's centre line (em units, 1 sigma).
X_JITTER = 0.06
#: Layout events: a page stops after a few columns (end of a chapter); a column starts
#: lower (quotation, poem); a column ends early (end of a paragraph).
STOP_EARLY_RATE = 0.12
INDENT_RATE = 0.15
SHORT_COLUMN_RATE = 0.25
#: Margins: the sheet inside the photograph (share of the page, per side, when the
#: surroundings show) and the text block inside the sheet (share of the sheet, per side).
SHEET_MARGIN_RANGE = (0.015, 0.06)
TEXT_MARGIN_RANGE = (0.07, 0.13)
#: Chance that two close kana are joined by a thin connecting stroke (renmentai).
LIGATURE_RATE = 0.15
#: Unlabelled ruby (furigana): chance per book of each rate that a main-column kanji gets a
#: reading beside it (the real sample's book glosses nearly every kanji; many books none).
RUBY_RATES = (0.0, 0.35, 0.8)
RUBY_RATE_WEIGHTS = (0.35, 0.3, 0.35)
#: Em size of ruby relative to the main text (real sample: kana of 40-60 px beside main
#: characters of about 150 px), and the number of kana per glossed kanji (1-4).
RUBY_SCALE_RANGE = (0.28, 0.42)
RUBY_LENGTH_WEIGHTS = (0.3, 0.4, 0.2, 0.1)
#: Gap between the kanji's right edge and its ruby, in main em units.
RUBY_GAP_RANGE = (0.02, 0.14)
#: Extra column pitch (main em units) of books with ruby: the real sample's columns are
#: about 2 em apart, the ruby sitting in the space.
RUBY_PITCH_EXTRA = 0.3
#: Kana written with a long final stroke, the chance of it, and how much taller the glyph
#: gets (real sample: boxes up to about twice the median height).
ELONGATED_KANA = 'しくへつゝりノ'
ELONGATE_RATE = 0.15
ELONGATE_RANGE = (1.4, 2.2)
#: Share of the usual horizontal jitter that an elongated glyph gets.
ELONGATED_JITTER = 0.25
#: Kanji written tall: the chance of it, and how much taller than its font's shape (the
#: width kept). A brush draws a kanji of stacked parts (若 艹 over 右, 裏, 楽) taller than a
#: print font's square: the labelled real page's 32 kanji have height / width 0.78 / 1.16 /
#: 1.93 (10th / 50th / 90th percentile), the generator's were 0.73 / 1.02 / 1.39, and with
#: these 0.76 / 1.09 / 1.62. The demo's detector put a second box on the upper or lower part
#: of such glyphs; trained with them (two seeds each) its detection F1 on that page went
#: 0.84 -> 0.875. Stretching further (1.3-2.0) widens the gaps inside a glyph beyond those
#: between glyphs, and the detector merged more neighbours (synthetic recall -0.04).
TALL_KANJI_RATE = 0.3
TALL_KANJI_RANGE = (1.2, 1.6)
#: Deep head margin: chance per book, and the extra top margin as a share of the sheet
#: height (real sample: the frame starts at about 23 % of the sheet).
HEAD_SPACE_RATE = 0.5
HEAD_SPACE_RANGE = (0.06, 0.18)
#: Unlabelled marks per page are drawn uniformly from [0, MAX_MARKS).
MAX_MARKS = 12
#: Chance of a red seal on a page, and of a picture on a page without text.
SEAL_RATE = 0.08
PICTURE_RATE = 0.3
#: Smallest ink extent (pixels, either side) of a labelled glyph.
MIN_GLYPH_PX = 2
#: Tries to draw one character before a column is given up (guards against fonts that
#: draw nothing for a character).
MAX_GLYPH_TRIES = 20
#: Ink colours (RGB): black, warm black, brown-black, grey (faded), blue-black.
INK_COLOURS = ((18, 16, 16), (32, 26, 22), (45, 34, 26), (66, 64, 62), (24, 26, 36))
INK_COLOUR_WEIGHTS = (0.35, 0.25, 0.15, 0.1, 0.15)
#: Ink seen through the sheet is greyer and bluer than on the front.
BLEED_THROUGH_COLOUR = (90, 100, 120)
#: Vermilion of seal stamps.
SEAL_COLOUR = (188, 52, 40)


@dataclasses.dataclass
class BookStyle:
    """What the pages of one book share.

    Attributes:
        font_index: Index of the font in the renderer's list.
        nib: Index into :data:`kr.synthetic.render.NIB_STYLES`.
        stroke_weight: Re-threshold level of the strokes (lower is heavier), in (0, 1).
        char_size: Em size as a share of the page height.
        pitch: Column pitch in em units.
        max_rotation: Largest glyph rotation in degrees.
        paper_colour: RGB, 0-255.
        ink_colour: RGB, 0-255.
        ink_strength: Opacity of the ink, in (0, 1].
        frame: 0 none, 1 single ruled frame, 2 thick outer and thin inner frame.
        column_rules: Whether ruled lines separate the columns.
        annotation_rate: Chance that an annotation column follows a main column.
        background: Whether the photograph shows dark surroundings around the sheet.
        background_colour: RGB of the surroundings.
        texture: Strength of paper texture.
        bleed_through: Opacity of the mirrored text of the other side (0 for none).
        ruby_rate: Chance that a main-column kanji gets unlabelled ruby (0 for none).
        ruby_scale: Em size of the ruby relative to the main text.
        head_space: Extra top margin as a share of the sheet height.
    """
    font_index: int
    nib: int
    stroke_weight: float
    char_size: float
    pitch: float
    max_rotation: float
    paper_colour: tuple
    ink_colour: tuple
    ink_strength: float
    frame: int
    column_rules: bool
    annotation_rate: float
    background: bool
    background_colour: tuple
    texture: float
    bleed_through: float
    ruby_rate: float = 0.0
    ruby_scale: float = 0.35
    head_space: float = 0.0


def sample_book_style(rng: np.random.Generator, n_fonts: int = 1,
                      font_weights=None) -> BookStyle:
    """Draw the shared look of one book.

    Args:
        rng: Random generator.
        n_fonts: Number of fonts available to the renderer.
        font_weights: Chance of each font (default: all alike;
            :func:`kr.synthetic.fonts.style_weights` favours the brush hands).

    Raises:
        ValueError: ``font_weights`` does not have ``n_fonts`` entries.
    """
    if font_weights is not None and len(font_weights) != n_fonts:
        raise ValueError('font_weights has {} entries for {} fonts'.format(
            len(font_weights), n_fonts))
    paper = np.asarray(paper_lib.PAPER_COLOURS[rng.integers(len(paper_lib.PAPER_COLOURS))],
                       dtype=np.float64)
    # Jitter brightness and warmth, but keep R >= G >= B: old paper is never greenish or blue.
    paper = paper * rng.uniform(0.94, 1.04) + np.array([1.0, 0.0, -1.0]) * rng.normal(0.0, 4.0)
    paper = np.clip(np.sort(paper)[::-1], 0, 255)
    ink = np.asarray(INK_COLOURS[rng.choice(len(INK_COLOURS), p=INK_COLOUR_WEIGHTS)],
                     dtype=np.float64)
    bg = paper_lib.BACKGROUND_COLOURS[rng.integers(len(paper_lib.BACKGROUND_COLOURS))]
    frame = int(rng.choice(3, p=[0.35, 0.4, 0.25]))
    font_index = int(rng.choice(n_fonts, p=font_weights))
    ruby_rate = float(rng.choice(RUBY_RATES, p=RUBY_RATE_WEIGHTS))
    pitch = float(rng.uniform(*COLUMN_PITCH_RANGE)) + (RUBY_PITCH_EXTRA if ruby_rate else 0.0)
    return BookStyle(
        font_index=font_index,
        nib=int(rng.integers(len(render.NIB_STYLES))),
        stroke_weight=float(rng.uniform(0.38, 0.6)),
        char_size=float(rng.uniform(*CHAR_SIZE_RANGE)),
        pitch=pitch,
        max_rotation=float(rng.uniform(2.0, 7.0)),
        paper_colour=tuple(float(v) for v in paper),
        ink_colour=tuple(float(v) for v in ink),
        ink_strength=float(rng.uniform(0.88, 0.98)),
        frame=frame,
        column_rules=bool(frame > 0 and rng.random() < 0.3),
        # Labelled annotation columns only in books without ruby: a book glosses its
        # kanji with unlabelled ruby or carries labelled notes, so that small kana beside a
        # column are never both.
        annotation_rate=(0.0 if ruby_rate else
                         float(rng.choice([0.0, 0.15, 0.35], p=[0.6, 0.25, 0.15]))),
        background=bool(rng.random() < 0.55),
        background_colour=tuple(float(v) for v in bg),
        texture=float(rng.uniform(0.7, 1.5)),
        bleed_through=float(rng.choice([0.0, rng.uniform(0.04, 0.12)], p=[0.4, 0.6])),
        ruby_rate=ruby_rate,
        ruby_scale=float(rng.uniform(*RUBY_SCALE_RANGE)),
        head_space=(float(rng.uniform(*HEAD_SPACE_RANGE)) if rng.random() < HEAD_SPACE_RATE
                    else 0.0),
    )


@dataclasses.dataclass
class SyntheticPage:
    """A rendered page and its ground truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        ink: ``(H, W)`` float32 alpha in [0, 1] of the characters alone (no paper, marks,
            rules or noise); a pixel is ink where it is at least
            :data:`kr.synthetic.render.INK_THRESHOLD`.
        bboxes: ``(R, 4)`` int32 ``(x, y, w, h)`` in page pixels (Kaggle's order), the tight
            extent of each character's ink, in reading order.
        unicodes: ``R`` class names (``'U+306E'``), same order.
        columns: ``(R,)`` int32 column of each character, 0 for the rightmost column
            (annotation columns count as columns here).
        glyph_masks: ``R`` bool arrays of shape ``(h, w)``: the ink of each character inside
            its own box (other characters' ink excluded).
        ruby: ``(R,)`` bool, true for the characters of small labelled annotation columns,
            which gloss the main column to their right and are labelled after it.
        ruby_ink: ``(H, W)`` float32 alpha of the unlabelled ruby (furigana) beside the
            kanji, which the labels leave out as the Kaggle labels do (zero where none).
        ruby_bboxes: ``(Q, 4)`` int32 ``(x, y, w, h)``: the extent of each unlabelled ruby
            group (one group per glossed kanji), in the order drawn.
        fonts: Indices (into the renderer's fonts) of the fonts drawn with, sorted.
    """
    image: np.ndarray
    ink: np.ndarray
    bboxes: np.ndarray
    unicodes: list
    columns: np.ndarray
    glyph_masks: list
    ruby: np.ndarray = None
    ruby_ink: np.ndarray = None
    ruby_bboxes: np.ndarray = None
    fonts: tuple = ()

    @property
    def labels(self) -> str:
        """The page's ``labels`` field of train.csv: ``'U+XXXX x y w h ...'`` (may be empty)."""
        xywh = np.asarray(self.bboxes, dtype=np.int64).reshape(-1, 4)
        return format_labels(self.unicodes, np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]],
                                                           axis=1))


@dataclasses.dataclass
class _Column:
    x: float          # centre line, page pixels
    size: float       # em size, page pixels
    y0: float         # first character may start here
    y1: float         # no ink below this
    annotation: bool


def _plan_columns(rng, style, block, size):
    """Column centre lines from right to left inside ``block`` = (x0, y0, x1, y1)."""
    bx0, by0, bx1, by1 = block
    columns = []
    x_right = bx1
    pitch = style.pitch * size
    block_h = by1 - by0
    last_main = None
    # A few pages stop early (end of a chapter): the remaining columns stay empty.
    stop_after = int(rng.integers(2, 8)) if rng.random() < STOP_EARLY_RATE else None
    while True:
        annotation = (last_main is not None and not style.column_rules
                      and rng.random() < style.annotation_rate)
        if annotation:
            a_size = size * rng.uniform(*ANNOTATION_SCALE_RANGE)
            slot = a_size * 1.35
            if x_right - slot < bx0:
                break
            length = block_h * rng.uniform(0.1, 0.45)
            start = last_main.y0 + rng.uniform(0.0, max(0.0, last_main.y1 - last_main.y0 - length))
            columns.append(_Column(x_right - slot / 2.0, a_size, start,
                                   min(by1, start + length), True))
            x_right -= slot
            continue
        if x_right - pitch < bx0 - 0.1 * pitch:
            break
        y0 = by0
        if rng.random() < INDENT_RATE:
            y0 += size * rng.integers(1, 4)   # indented line (quotation, poem)
        y1 = by1
        if rng.random() < SHORT_COLUMN_RATE:
            y1 = by0 + block_h * rng.uniform(0.15, 0.9)   # paragraph ends
        col = _Column(x_right - pitch / 2.0, size, y0, y1, False)
        columns.append(col)
        last_main = col
        x_right -= pitch
        if stop_after is not None and sum(not c.annotation for c in columns) >= stop_after:
            break
    return columns


def _paste_max(canvas, patch, x, y):
    """``canvas[y:, x:] = max(canvas, patch)`` clipped to the canvas; returns the used window."""
    h, w = patch.shape
    ch, cw = canvas.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(cw, x + w), min(ch, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    sub = patch[y0 - y:y1 - y, x0 - x:x1 - x]
    np.maximum(canvas[y0:y1, x0:x1], sub, out=canvas[y0:y1, x0:x1])
    return x0, y0, x1, y1, sub


def _draw_line(rng, layer, p0, p1, thickness, wobble):
    """A slightly wavy, uneven ruled line into ``layer`` (float32 alpha)."""
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    length = max(1e-6, float(np.linalg.norm(p1 - p0)))
    n = max(2, int(length / 8.0))
    t = np.linspace(0.0, 1.0, n)
    pts = p0 + (p1 - p0) * t[:, None]
    normal = np.array([-(p1 - p0)[1], (p1 - p0)[0]]) / length
    # Smooth bend: a few random control offsets, interpolated (no kinks).
    knots = rng.normal(0.0, wobble, 5)
    offset = np.interp(t, np.linspace(0.0, 1.0, 5), knots)
    offset = np.convolve(np.pad(offset, 3, mode='edge'), np.ones(7) / 7.0, mode='valid')
    pts = pts + offset[:, None] * normal[None, :]
    shift = 4   # sub-pixel precision for cv2 drawing
    cv2.polylines(layer, [np.round(pts * (1 << shift)).astype(np.int32)], False, 1.0,
                  max(1, int(round(thickness))), cv2.LINE_AA, shift)


def _draw_marks(rng, layer, block, size, count):
    """Unlabelled small marks: dots, short strokes, little circles."""
    bx0, by0, bx1, by1 = block
    for _ in range(count):
        x, y = rng.uniform([bx0, by0], [bx1, by1])
        r = size * rng.uniform(0.06, 0.16)
        kind = rng.integers(3)
        if kind == 0:
            cv2.circle(layer, (int(x), int(y)), max(1, int(r)), 1.0, -1, cv2.LINE_AA)
        elif kind == 1:
            angle = rng.uniform(0, np.pi)
            d = np.array([np.cos(angle), np.sin(angle)]) * r * 2.0
            cv2.line(layer, (int(x - d[0]), int(y - d[1])), (int(x + d[0]), int(y + d[1])), 1.0,
                     max(1, int(size * 0.05)), cv2.LINE_AA)
        else:
            cv2.circle(layer, (int(x), int(y)), max(2, int(r * 1.4)), 1.0,
                       max(1, int(size * 0.035)), cv2.LINE_AA)


def _draw_ligature(rng, layer, top_box, bottom_box, size):
    """A thin connecting stroke from the bottom of one glyph to the top of the next."""
    x_a = top_box[0] + top_box[2] * rng.uniform(0.3, 0.7)
    y_a = top_box[1] + top_box[3] - 1
    x_b = bottom_box[0] + bottom_box[2] * rng.uniform(0.3, 0.7)
    y_b = bottom_box[1] + 1
    mid = ((x_a + x_b) / 2.0 + rng.normal(0.0, size * 0.1), (y_a + y_b) / 2.0)
    pts = np.array([[x_a, y_a], mid, [x_b, y_b]], dtype=np.float64)
    cv2.polylines(layer, [np.round(pts * 16).astype(np.int32)], False, 1.0,
                  max(1, int(round(size * 0.04))), cv2.LINE_AA, 4)


def _draw_picture(rng, layer, block, size):
    """Loose smooth brush curves and a hill line, standing for an illustration."""
    bx0, by0, bx1, by1 = block
    for _ in range(int(rng.integers(3, 9))):
        n = 40
        start = rng.uniform([bx0, by0], [bx1, by1])
        angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.12, n))
        step = size * rng.uniform(0.1, 0.35)
        pts = start + np.cumsum(np.stack([np.cos(angle), np.sin(angle)], 1) * step, axis=0)
        pts = np.clip(pts, [bx0, by0], [bx1, by1])
        cv2.polylines(layer, [np.round(pts * 16).astype(np.int32)], False, 1.0,
                      max(1, int(size * rng.uniform(0.03, 0.1))), cv2.LINE_AA, 4)
    xs = np.linspace(bx0, bx1, 60)
    base = rng.uniform(by0 + 0.3 * (by1 - by0), by1)
    knots = np.abs(rng.normal(0.0, 2.0 * size, (1, 6))).astype(np.float32)
    hills = base - cv2.resize(knots, (60, 1), interpolation=cv2.INTER_CUBIC)[0]
    pts = np.stack([xs, np.clip(hills, by0, by1)], 1)
    cv2.polylines(layer, [np.round(pts * 16).astype(np.int32)], False, 1.0,
                  max(1, int(size * 0.06)), cv2.LINE_AA, 4)


def _draw_seal(rng, renderer, layer, centre, side, font_index):
    """A square seal: frame plus a few glyphs, into ``layer`` (float32 alpha)."""
    x, y = int(centre[0] - side / 2), int(centre[1] - side / 2)
    cv2.rectangle(layer, (x, y), (x + int(side), y + int(side)), 1.0, max(1, int(side * 0.06)),
                  cv2.LINE_AA)
    cell = side / 2.0
    for i in range(4):
        char = '印寿福徳文庫蔵書'[int(rng.integers(8))]
        seal_font = renderer.font_for(font_index, char)
        if seal_font is None:
            continue
        patch = renderer.render(rng, seal_font, char, cell * 0.8, 3,
                                render.GlyphShape(weight=0.35, softness=0.5))
        if patch is None:
            continue
        cx = x + cell * (1 - i // 2) + cell * 0.5
        cy = y + cell * (i % 2) + cell * 0.5
        _paste_max(layer, patch, int(cx - patch.shape[1] / 2), int(cy - patch.shape[0] / 2))


@dataclasses.dataclass
class _Text:
    bboxes: list = dataclasses.field(default_factory=list)     # (x, y, w, h) ints
    unicodes: list = dataclasses.field(default_factory=list)
    columns: list = dataclasses.field(default_factory=list)
    masks: list = dataclasses.field(default_factory=list)
    ruby: list = dataclasses.field(default_factory=list)
    ruby_bboxes: list = dataclasses.field(default_factory=list)   # unlabelled ruby groups
    fonts: set = dataclasses.field(default_factory=set)


def _glyph(rng, style, renderer, char, csize, shape):
    """``(patch, font index)`` of one occurrence, or ``(None, None)`` when no font draws it."""
    font_index = renderer.font_for(style.font_index, char)
    if font_index is None:
        return None, None
    return renderer.render(rng, font_index, char, csize, style.nib, shape), font_index


def _overlaps(box, boxes):
    """Whether ``box`` (x, y, w, h) meets any of ``boxes``."""
    x, y, w, h = box
    return any(x < bx + bw and bx < x + w and y < by + bh and by < y + h
               for bx, by, bw, bh in boxes)


def _draw_ruby(rng, style, vocabulary, renderer, kanji_box, size, ruby_ink, ink_tone, text):
    """Unlabelled ruby beside one kanji: a few small kana stacked right of it, centred on it.

    Drawn into ``ruby_ink`` and ``ink_tone`` (not the labelled character layer); skipped when
    it would meet a labelled character already written (the columns to the right).
    """
    n = 1 + int(rng.choice(len(RUBY_LENGTH_WEIGHTS), p=RUBY_LENGTH_WEIGHTS))
    rsize = size * style.ruby_scale
    patches = []
    for _ in range(n):
        char = vocabulary.chars[int(rng.choice(len(vocabulary.chars),
                                               p=vocabulary.kana_weights))]
        shape = render.sample_shape(rng, style.max_rotation, style.stroke_weight)
        patch, font_index = _glyph(rng, style, renderer, char, rsize * KANA_SCALE, shape)
        if patch is not None:
            patches.append((patch, font_index))
    if not patches:
        return
    gap = rsize * 0.08
    height = sum(p.shape[0] for p, _ in patches) + gap * (len(patches) - 1)
    width = max(p.shape[1] for p, _ in patches)
    kx, ky, kw, kh = kanji_box
    x0 = kx + kw + rng.uniform(*RUBY_GAP_RANGE) * size
    y0 = ky + kh / 2.0 - height / 2.0 + rng.normal(0.0, 0.1) * kh
    group = (int(x0), int(y0), int(np.ceil(width)), int(np.ceil(height)))
    ch, cw = ruby_ink.shape
    if (group[0] < 0 or group[1] < 0 or group[0] + group[2] > cw or group[1] + group[3] > ch
            or _overlaps(group, text.bboxes)):
        return
    strength = np.float32(style.ink_strength * rng.uniform(0.8, 1.0))
    y = y0
    for patch, font_index in patches:
        px = int(round(x0 + (width - patch.shape[1]) / 2.0 + rng.normal(0.0, 0.05) * rsize))
        geometry = _paste_max(ruby_ink, patch, px, int(round(y)))
        if geometry is not None:
            gx0, gy0, gx1, gy1, sub = geometry
            np.maximum(ink_tone[gy0:gy1, gx0:gx1], sub * strength,
                       out=ink_tone[gy0:gy1, gx0:gx1])
            text.fonts.add(font_index)
        y += patch.shape[0] + gap
    text.ruby_bboxes.append(group)


def _write_text(rng, style, vocabulary, renderer, block, size, ink, ink_tone, marks,
                ruby_ink=None):
    """Lay out and draw the columns of a page into the layers; returns the ground truth.

    Unlabelled ruby goes to ``ruby_ink`` (none when it is None)."""
    text = _Text()
    columns_plan = _plan_columns(rng, style, block, size)
    used_weights = vocabulary.weights
    kana_weights = vocabulary.kana_weights
    column_index = 0
    for col in columns_plan:
        # Slow drift of the column's centre line: hand-written columns are not straight.
        slope = rng.normal(0.0, 0.08) * col.size / max(1.0, block[3] - block[1])
        wave_amp = rng.uniform(0.0, 0.08) * col.size
        wave_phase = rng.uniform(0, 2 * np.pi)
        y = col.y0
        prev_box = None
        n_in_column = 0
        failures = 0
        while failures < MAX_GLYPH_TRIES:
            weights = kana_weights if col.annotation else used_weights
            idx = int(rng.choice(len(vocabulary.chars), p=weights))
            char = vocabulary.chars[idx]
            csize = col.size * np.exp(rng.normal(0.0, CHAR_SIZE_LOG_STD))
            if is_kana(char):
                csize *= KANA_SCALE
            shape = render.sample_shape(rng, style.max_rotation, style.stroke_weight)
            jitter = X_JITTER
            if char in ELONGATED_KANA and rng.random() < ELONGATE_RATE:
                # A long final stroke: taller by `stretch`, the width kept. It runs down the
                # column's centre line (a thin glyph off the line reads as another column).
                stretch = rng.uniform(*ELONGATE_RANGE)
                csize *= np.sqrt(stretch)
                shape.aspect /= stretch
                jitter = X_JITTER * ELONGATED_JITTER
            elif not is_kana(char) and rng.random() < TALL_KANJI_RATE:
                stretch = rng.uniform(*TALL_KANJI_RANGE)
                csize *= np.sqrt(stretch)
                shape.aspect /= stretch
            patch, font_index = _glyph(rng, style, renderer, char, csize, shape)
            if patch is None:
                failures += 1
                continue
            inked = patch >= render.INK_THRESHOLD
            rows = np.flatnonzero(inked.any(axis=1))
            cols = np.flatnonzero(inked.any(axis=0))
            ih = rows[-1] - rows[0] + 1
            iw = cols[-1] - cols[0] + 1
            if min(ih, iw) < MIN_GLYPH_PX:
                # A speck (a tiny glyph thinned away), not a character a labeller would box.
                failures += 1
                continue
            if prev_box is None:
                gap = 0.0
            elif col.annotation and rng.random() < ANNOTATION_BREAK_RATE:
                gap = rng.uniform(*ANNOTATION_BREAK_RANGE) * col.size
            elif rng.random() < OVERLAP_RATE:
                # Overlap at most MAX_OVERLAP of the shorter glyph so that reading order
                # (top to bottom by box centre and by box top) stays unambiguous.
                gap = max(rng.uniform(*OVERLAP_RANGE) * col.size,
                          -MAX_OVERLAP * min(ih, prev_box[3]))
            else:
                gap = rng.uniform(*GAP_RANGE) * col.size
            top = y + gap
            if top + ih > col.y1:
                break
            cx = (col.x + slope * (top - col.y0)
                  + wave_amp * np.sin(wave_phase + top / (3.0 * col.size))
                  + rng.normal(0.0, jitter) * col.size)
            px = int(round(cx - (cols[0] + iw / 2.0)))
            py = int(round(top)) - int(rows[0])
            geometry = _paste_max(ink, patch, px, py)
            y = top + ih
            if geometry is None:
                continue
            x0, y0, x1, y1, sub = geometry
            mask = sub >= render.INK_THRESHOLD
            r = np.flatnonzero(mask.any(axis=1))
            c = np.flatnonzero(mask.any(axis=0))
            if len(r) == 0:
                continue
            box = (x0 + int(c[0]), y0 + int(r[0]), int(c[-1] - c[0] + 1), int(r[-1] - r[0] + 1))
            # Uneven pressure: the printed tone of a glyph is its alpha times a strength.
            strength = np.float32(style.ink_strength * rng.uniform(0.85, 1.0))
            np.maximum(ink_tone[y0:y1, x0:x1], sub * strength, out=ink_tone[y0:y1, x0:x1])
            if (prev_box is not None and is_kana(char) and gap < 0.2 * col.size
                    and rng.random() < LIGATURE_RATE):
                _draw_ligature(rng, marks, prev_box, box, col.size)
            text.bboxes.append(box)
            text.unicodes.append(unicode_of(char))
            text.columns.append(column_index)
            text.ruby.append(bool(col.annotation))
            text.masks.append(mask[r[0]:r[-1] + 1, c[0]:c[-1] + 1].copy())
            text.fonts.add(font_index)
            prev_box = box
            n_in_column += 1
            if (ruby_ink is not None and not col.annotation and not is_kana(char)
                    and rng.random() < style.ruby_rate):
                _draw_ruby(rng, style, vocabulary, renderer, box, col.size, ruby_ink,
                           ink_tone, text)
        if n_in_column:
            column_index += 1
    return text


def render_page(rng: np.random.Generator, page_height: int = 1500,
                vocabulary: Vocabulary = None, renderer: render.GlyphRenderer = None,
                style: BookStyle = None, empty: bool = False) -> SyntheticPage:
    """Render one synthetic page and its ground truth.

    Args:
        rng: Random generator; the page is a pure function of its state and the arguments.
        page_height: Height in pixels; the width is 0.62-0.71 of it.
        vocabulary: Characters and their frequencies (default :func:`make_vocabulary`).
        renderer: Glyph renderer (default: the bundled IPAexGothic font only).
        style: Look of the book (default: drawn from ``rng``).
        empty: Write no characters (a cover, blank leaf or picture page).

    Returns:
        The page with its image, character ink and boxes in reading order.

    Raises:
        ValueError: ``page_height`` is too small for a page.
    """
    if page_height < 64:
        raise ValueError('page_height must be at least 64 pixels, got {}'.format(page_height))
    if vocabulary is None:
        vocabulary = make_vocabulary()
    if renderer is None:
        renderer = render.GlyphRenderer([fonts.bundled_font_path()])
    if style is None:
        style = sample_book_style(rng, len(renderer.font_paths),
                                  fonts.style_weights(renderer.styles))
    height = int(page_height)
    width = int(round(height * rng.uniform(*PAGE_ASPECT_RANGE)))

    # Sheet inside the photograph, and text block inside the sheet.
    if style.background:
        m = rng.uniform(*SHEET_MARGIN_RANGE, size=4)
        sheet = (int(width * m[0]), int(height * m[1]), width - int(width * m[2]),
                 height - int(height * m[3]))
    else:
        sheet = (0, 0, width, height)
    sx0, sy0, sx1, sy1 = sheet
    sw, sh = sx1 - sx0, sy1 - sy0
    mx = rng.uniform(*TEXT_MARGIN_RANGE, size=2) * sw
    my = rng.uniform(*TEXT_MARGIN_RANGE, size=2) * sh
    my[0] += style.head_space * sh
    block = (sx0 + mx[0], sy0 + my[0], sx1 - mx[1], sy1 - my[1])
    size = max(MIN_CHAR_SIZE, style.char_size * height * rng.uniform(0.93, 1.07))

    ink = np.zeros((height, width), dtype=np.float32)          # characters, geometry
    ink_tone = np.zeros((height, width), dtype=np.float32)     # characters, as printed
    marks = np.zeros((height, width), dtype=np.float32)        # rules, marks, ligatures
    ruby_ink = np.zeros((height, width), dtype=np.float32)     # unlabelled ruby, geometry
    text = _write_text(rng, style, vocabulary, renderer, block, size,
                       ink, ink_tone, marks, ruby_ink) if not empty else _Text()
    bboxes, unicodes, columns, glyph_masks = text.bboxes, text.unicodes, text.columns, text.masks

    # Ruled frame and column rules, drawn like a woodblock: slightly uneven lines.
    thick = max(1.0, height * rng.uniform(0.0015, 0.004))
    wob = height * 0.0004
    if style.frame:
        pad = size * rng.uniform(0.25, 0.5)
        fx0, fy0, fx1, fy1 = block[0] - pad, block[1] - pad, block[2] + pad, block[3] + pad
        fx0, fy0 = max(fx0, sx0 + 2), max(fy0, sy0 + 2)
        fx1, fy1 = min(fx1, sx1 - 3), min(fy1, sy1 - 3)
        outer = [((fx0, fy0), (fx1, fy0)), ((fx1, fy0), (fx1, fy1)), ((fx1, fy1), (fx0, fy1)),
                 ((fx0, fy1), (fx0, fy0))]
        for p0, p1 in outer:
            _draw_line(rng, marks, p0, p1, thick * (2.0 if style.frame == 2 else 1.0), wob)
        if style.frame == 2:
            inset = max(3.0, thick * 2.5)
            for (a, b), (c, d) in outer:
                sgn_x = 1 if a == fx0 and c == fx0 else (-1 if a == fx1 and c == fx1 else 0)
                sgn_y = 1 if b == fy0 and d == fy0 else (-1 if b == fy1 and d == fy1 else 0)
                _draw_line(rng, marks, (a + sgn_x * inset, b + sgn_y * inset),
                           (c + sgn_x * inset, d + sgn_y * inset), max(1.0, thick * 0.6), wob)
        if style.column_rules:
            pitch = style.pitch * size
            x = block[2] - pitch
            while x > block[0] + pitch * 0.3:
                _draw_line(rng, marks, (x, fy0), (x, fy1), max(1.0, thick * 0.5), wob)
                x -= pitch
    _draw_marks(rng, marks, block, size, int(rng.integers(0, MAX_MARKS)))
    if empty and rng.random() < PICTURE_RATE:
        _draw_picture(rng, marks, block, size)

    # Paper and surroundings.
    stains = int(rng.poisson(0.6))
    foxing = int(rng.poisson(3.0))
    sheet_img = paper_lib.make_paper(rng, sh, sw, style.paper_colour, style.texture,
                                     fibres=rng.uniform(0.3, 1.5), stains=stains, foxing=foxing)
    if style.background:
        image = paper_lib.make_background(rng, height, width, style.background_colour)
        image[sy0:sy1, sx0:sx1] = sheet_img
        # Edges of the leaves underneath, visible beside the sheet.
        for k in range(int(rng.integers(0, 5))):
            side = sx1 + 2 + 3 * k
            if side < width:
                light = np.asarray(style.paper_colour, dtype=np.float32) * np.float32(0.75)
                image[sy0 + 4 * k:sy1 - 4 * k, side:min(width, side + 1)] = light
    else:
        image = sheet_img

    # Bleed-through: the other side's text, mirrored, blurred and faint. A blank leaf shows
    # it too, so text is written for the other side alone when this one has none.
    bleed = style.bleed_through
    if empty and bleed == 0 and rng.random() < 0.5:
        bleed = rng.uniform(0.04, 0.1)
    if bleed > 0:
        source = ink
        if empty:
            source = np.zeros((height, width), dtype=np.float32)
            _write_text(rng, style, vocabulary, renderer, block, size, source, source, source)
        ghost = cv2.flip(source, 1)
        shift = np.float32([[1, 0, rng.normal(0.0, size)], [0, 1, rng.normal(0.0, size)]])
        ghost = cv2.warpAffine(ghost, shift, (width, height))
        ghost = cv2.GaussianBlur(ghost, (0, 0), max(1.0, size * 0.04))
        ghost *= np.float32(bleed)
        image = paper_lib.composite(image, ghost, BLEED_THROUGH_COLOUR)

    # Ink: characters and marks share the book's ink; a smooth field makes it uneven.
    unevenness = 1.0 - np.float32(0.12) * np.abs(paper_lib.smooth_noise(rng, height, width, 20))
    alpha = np.maximum(ink_tone, marks * np.float32(style.ink_strength)) * unevenness
    image = paper_lib.composite(image, alpha, style.ink_colour)

    if rng.random() < SEAL_RATE:
        seal = np.zeros((height, width), dtype=np.float32)
        side = size * rng.uniform(1.8, 3.2)
        centre = rng.uniform([sx0 + side, sy0 + side], [max(sx0 + side + 1, sx1 - side),
                                                       max(sy0 + side + 1, sy1 - side)])
        _draw_seal(rng, renderer, seal, centre, side, style.font_index)
        seal *= np.float32(rng.uniform(0.55, 0.85))
        image = paper_lib.composite(image, seal, SEAL_COLOUR)

    out = paper_lib.finish_photograph(rng, image,
                                      noise=rng.uniform(1.5, 4.5), blur=rng.uniform(0.3, 0.8),
                                      lighting=rng.uniform(0.0, 0.12))
    boxes = np.asarray(bboxes, dtype=np.int32).reshape(-1, 4)
    return SyntheticPage(image=out, ink=ink, bboxes=boxes, unicodes=unicodes,
                         columns=np.asarray(columns, dtype=np.int32), glyph_masks=glyph_masks,
                         ruby=np.asarray(text.ruby, dtype=bool), ruby_ink=ruby_ink,
                         ruby_bboxes=np.asarray(text.ruby_bboxes, dtype=np.int32).reshape(-1, 4),
                         fonts=tuple(sorted(text.fonts)))
