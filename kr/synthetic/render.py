"""Brush-like glyphs: font rendering, a calligraphic nib, and a per-glyph random warp.

A glyph of a gothic font has strokes of one width with square ends; kuzushiji is written
with a brush whose stroke width depends on the stroke direction, with round ends, uneven
pressure and a shaky hand. :class:`GlyphRenderer` approximates that in three steps:

1. the font glyph is drawn large; a print font's glyph is thinned and re-inked with a
   slanted elliptical nib (dilation with a rotated ellipse), which makes strokes thick or
   thin by direction (a brush font's strokes already are, and are kept as drawn);
2. the result is scaled to the wanted size and cached per ``(font, char, size, nib)``;
3. each occurrence gets its own affine transform (rotation, shear, aspect), a smooth
   elastic displacement, a stroke-weight change (blur, then re-threshold at a random level)
   and a soft edge.

The ink of a glyph is where its alpha is at least :data:`INK_THRESHOLD`; ground-truth
boxes are the extent of that ink.
"""

import dataclasses

import cv2
import numpy as np

from kr.synthetic import fonts

#: Alpha at or above which a pixel counts as ink of the glyph (defines the tight boxes).
INK_THRESHOLD = 0.35

#: Most base masks a renderer keeps (a few KB each); about 200 chars x 6 nibs x 20 sizes.
MAX_CACHED_GLYPHS = 25000

#: Em size (pixels) at which glyphs are drawn before the nib is applied; big enough that
#: thinning and dilation act on strokes several pixels wide.
_HIRES_EM = 128
#: Stroke width of IPAexGothic as a share of the em (measured on the font: about 0.075).
_FONT_STROKE = 0.075

#: Relative step of the cached glyph sizes (4 %: invisible after the per-glyph warp).
_SIZE_STEP = 0.04

#: Edge roughness: amplitude of the noise added to the stroke ramp, and its cell size in px.
_ROUGHNESS = 0.09
_ROUGH_CELL = 3
#: Stroke weight: sigma of the blur before re-thresholding (share of the em size), and the
#: width of the alpha band around the weight level that becomes the new soft edge.
_RAMP_SIGMA = 0.02
_WEIGHT_BAND = 0.24
#: Thinning before the nib is applied, as a share of the font's stroke width.
_THINNING = 0.5
#: Brush fonts are drawn with a thin pen line; woodblock prints cut from brush writing have
#: bolder strokes (real sample: about a tenth of the em). Their glyphs are thickened with a
#: round kernel of this share of the em.
_BRUSH_THICKEN = 0.04
#: Control points per side of the elastic displacement grid.
_ELASTIC_GRID = 4
#: Soft rim (pixels) kept around the ink of a rendered glyph.
_RIM = 3

#: Ink density (ink pixels / em square) of a light kana (に) and of a dense kanji (御) in
#: IPAexGothic; the nib width falls linearly between them to :data:`_MIN_NIB_SCALE` of its
#: full size.
_LIGHT_GLYPH = 0.14
_DENSE_GLYPH = 0.32
_MIN_NIB_SCALE = 0.45

#: Nib shapes: (angle of the long axis in degrees, minor/major axis ratio, width as a share
#: of the font's stroke). A brush held at about 45 degrees gives thick verticals and thin
#: horizontals, as in most kuzushiji.
NIB_STYLES = (
    (45.0, 0.45, 1.3),
    (60.0, 0.50, 1.1),
    (30.0, 0.40, 1.4),
    (50.0, 0.65, 1.0),
    (40.0, 0.35, 1.6),
    (70.0, 0.55, 1.2),
)


@dataclasses.dataclass
class GlyphShape:
    """Random deformation of one glyph occurrence (all sizes in page pixels).

    Attributes:
        rotation: Degrees, counter-clockwise.
        shear: Horizontal shear factor.
        aspect: Width / height scale ratio (1 keeps the font's proportions).
        elastic: Standard deviation of the smooth displacement, as a share of the size.
        weight: Re-threshold level in (0, 1); lower gives heavier strokes.
        softness: Gaussian sigma of the final edge, pixels.
    """
    rotation: float = 0.0
    shear: float = 0.0
    aspect: float = 1.0
    elastic: float = 0.0
    weight: float = 0.5
    softness: float = 0.6


def sample_shape(rng: np.random.Generator, max_rotation: float = 6.0,
                 weight: float = 0.5) -> GlyphShape:
    """Draw the deformation of one glyph occurrence.

    Args:
        rng: Random generator.
        max_rotation: Largest rotation in degrees.
        weight: Page-level stroke weight level around which this glyph's weight varies.
    """
    return GlyphShape(
        rotation=float(np.clip(rng.normal(0.0, max_rotation / 2.5), -max_rotation, max_rotation)),
        shear=float(rng.uniform(-0.18, 0.18)),
        aspect=float(np.exp(rng.normal(0.0, 0.10))),
        elastic=float(rng.uniform(0.02, 0.05)),
        weight=float(np.clip(weight + rng.normal(0.0, 0.04), 0.3, 0.75)),
        softness=float(rng.uniform(0.4, 0.9)),
    )


def _nib_kernel(length: float, ratio: float, angle: float) -> np.ndarray:
    """uint8 ellipse kernel with long axis ``length`` pixels at ``angle`` degrees."""
    half = int(np.ceil(length / 2.0)) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.uint8)
    axes = (max(1, int(round(length / 2.0))), max(1, int(round(length * ratio / 2.0))))
    cv2.ellipse(kernel, (half, half), axes, -angle, 0, 360, 1, -1)
    return kernel


class GlyphRenderer:
    """Render brush-like glyph masks; caches the per-size base masks (one per process).

    Args:
        font_paths: Font files; glyphs are addressed by their index in this list.
        styles: The hand of each font (:data:`kr.synthetic.fonts.FONT_STYLES`; default: from
            the file names, :func:`kr.synthetic.fonts.font_style`). Only ``'print'`` fonts
            get the nib.
        coverage: ``{char: tuple of bool per font}``, true where the font draws the
            character (:func:`kr.synthetic.fonts.font_coverage`); characters not in it are
            taken to be drawn by every font (default: every font draws everything).

    Raises:
        ValueError: ``styles`` or a coverage entry does not have one item per font.
    """

    def __init__(self, font_paths, styles=None, coverage=None):
        self.font_paths = list(font_paths)
        if styles is None:
            styles = [fonts.font_style(p) for p in self.font_paths]
        self.styles = list(styles)
        self.coverage = dict(coverage or {})
        if len(self.styles) != len(self.font_paths):
            raise ValueError('styles has {} entries for {} fonts'.format(
                len(self.styles), len(self.font_paths)))
        for char, row in self.coverage.items():
            if len(row) != len(self.font_paths):
                raise ValueError('coverage of {!r} has {} entries for {} fonts'.format(
                    char, len(row), len(self.font_paths)))
        # Fallback order for a character a book's font lacks: brush and cursive fonts
        # first (they look like the page around them), print fonts last.
        self._fallback = sorted(range(len(self.font_paths)),
                                key=lambda i: (self.styles[i] == 'print', i))
        self._cache = {}

    def covers(self, font_index: int, char: str) -> bool:
        """Whether the font draws ``char``."""
        row = self.coverage.get(char)
        return True if row is None else bool(row[font_index])

    def font_for(self, font_index: int, char: str):
        """The font to draw ``char`` with on a page in font ``font_index``.

        Returns:
            int or None: ``font_index`` when it draws the character, else the first font of
            the fallback order (brush fonts, then print fonts) that does; None when no font
            draws it.
        """
        if self.covers(font_index, char):
            return font_index
        for i in self._fallback:
            if self.covers(i, char):
                return i
        return None

    def base_mask(self, font_index: int, char: str, size: int, nib: int) -> np.ndarray:
        """Nib-inked glyph at em size ``size``, cropped to its ink with a margin.

        Returns:
            ``(h, w)`` uint8 alpha, 0-255 (shared with the cache: do not modify).
        """
        key = (font_index, char, size, nib)
        mask = self._cache.get(key)
        if mask is None:
            if len(self._cache) >= MAX_CACHED_GLYPHS:
                # Cheap bound on memory; the cache never changes what is drawn.
                self._cache.clear()
            mask = self._render_base(font_index, char, size, nib)
            self._cache[key] = mask
        return mask

    def _render_base(self, font_index, char, size, nib):
        from PIL import Image
        from PIL import ImageDraw
        font = fonts.load_font(self.font_paths[font_index], _HIRES_EM)
        canvas = Image.new('L', (2 * _HIRES_EM, 2 * _HIRES_EM), 0)
        ImageDraw.Draw(canvas).text((_HIRES_EM // 2, _HIRES_EM // 2), char, font=font, fill=255)
        hi = np.asarray(canvas, dtype=np.uint8)
        angle, ratio, width = NIB_STYLES[nib]
        stroke = _FONT_STROKE * _HIRES_EM
        inked = hi > 127
        if inked.any():
            density = np.count_nonzero(inked) / float(_HIRES_EM * _HIRES_EM)
            # Dense kanji have narrow gaps between strokes: a full nib would fill them in.
            width *= float(np.clip((_DENSE_GLYPH - density) / (_DENSE_GLYPH - _LIGHT_GLYPH),
                                   _MIN_NIB_SCALE, 1.0))
        if self.styles[font_index] == 'print':
            thin = int(round(stroke * _THINNING))
            if thin >= 1:
                hi = cv2.erode(hi, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thin, thin)))
            hi = cv2.dilate(hi, _nib_kernel(stroke * width, ratio, angle))
        else:
            side = max(1, int(round(_BRUSH_THICKEN * _HIRES_EM)))
            hi = cv2.dilate(hi, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
        inked = hi > 127
        rows = np.flatnonzero(inked.any(axis=1))
        cols = np.flatnonzero(inked.any(axis=0))
        if len(rows) == 0:
            return np.zeros((size, size), dtype=np.uint8)
        margin = _HIRES_EM // 8
        y0, y1 = max(0, rows[0] - margin), min(hi.shape[0], rows[-1] + 1 + margin)
        x0, x1 = max(0, cols[0] - margin), min(hi.shape[1], cols[-1] + 1 + margin)
        hi = hi[y0:y1, x0:x1]
        scale = size / float(_HIRES_EM)
        out_w = max(1, int(round(hi.shape[1] * scale)))
        out_h = max(1, int(round(hi.shape[0] * scale)))
        small = cv2.resize(hi, (out_w, out_h), interpolation=cv2.INTER_AREA)
        return small

    def render(self, rng: np.random.Generator, font_index: int, char: str, size: float,
               nib: int, shape: GlyphShape):
        """Draw one deformed occurrence of ``char``.

        Args:
            rng: Random generator for the elastic field.
            font_index: Index into ``font_paths``.
            char: The character.
            size: Em size in page pixels (the height of a full-size kanji).
            nib: Index into :data:`NIB_STYLES`.
            shape: The deformation.

        Returns:
            ``(h, w)`` float32 alpha in [0, 1] whose ink (alpha >= :data:`INK_THRESHOLD`)
            touches all four borders, or ``None`` when nothing is inked.
        """
        # Cache sizes on a logarithmic grid; the affine below makes up the difference.
        isize = max(4, int(round(np.exp(np.round(np.log(size) / _SIZE_STEP) * _SIZE_STEP))))
        src = self.base_mask(font_index, char, isize, nib).astype(np.float32)
        src *= np.float32(1.0 / 255.0)
        scale = size / isize
        sh, sw = src.shape
        # Forward affine around the source centre: scale with aspect, shear, rotation.
        sx = scale * np.sqrt(shape.aspect)
        sy = scale / np.sqrt(shape.aspect)
        theta = np.deg2rad(shape.rotation)
        c, s = np.cos(theta), np.sin(theta)
        rot = np.array([[c, s], [-s, c]], dtype=np.float64)
        lin = rot @ np.array([[1.0, shape.shear], [0.0, 1.0]]) @ np.diag([sx, sy])
        amp = shape.elastic * size
        pad = int(np.ceil(3.0 * amp + 2.0))
        corners = np.array([[0, 0], [sw, 0], [0, sh], [sw, sh]], dtype=np.float64)
        moved = (corners - [sw / 2.0, sh / 2.0]) @ lin.T
        out_w = int(np.ceil(moved[:, 0].max() - moved[:, 0].min())) + 2 * pad
        out_h = int(np.ceil(moved[:, 1].max() - moved[:, 1].min())) + 2 * pad
        det = lin[0, 0] * lin[1, 1] - lin[0, 1] * lin[1, 0]
        inv = np.array([[lin[1, 1], -lin[0, 1]], [-lin[1, 0], lin[0, 0]]]) / det
        yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
        dx = xx - np.float32(out_w / 2.0)
        dy = yy - np.float32(out_h / 2.0)
        map_x = (inv[0, 0] * dx + inv[0, 1] * dy + sw / 2.0).astype(np.float32)
        map_y = (inv[1, 0] * dx + inv[1, 1] * dy + sh / 2.0).astype(np.float32)
        if amp > 0:
            grid = rng.normal(0.0, amp, size=(2, _ELASTIC_GRID, _ELASTIC_GRID)).astype(np.float32)
            map_x += cv2.resize(grid[0], (out_w, out_h), interpolation=cv2.INTER_CUBIC)
            map_y += cv2.resize(grid[1], (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        alpha = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0)
        # Stroke weight: blur, then put the edge at a random level of the blurred ramp.
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, _RAMP_SIGMA * size))
        # Rough edges: paper fibres and a dry brush make the outline ragged. The noise is
        # faded out away from the strokes so that it never makes specks on clean paper.
        cells = (max(2, out_h // _ROUGH_CELL), max(2, out_w // _ROUGH_CELL))
        rough = rng.normal(0.0, _ROUGHNESS, size=cells).astype(np.float32)
        rough = cv2.resize(rough, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        alpha += rough * np.clip(alpha * np.float32(4.0), 0.0, 1.0)
        lo = shape.weight - _WEIGHT_BAND / 2.0
        alpha = np.clip((alpha - np.float32(lo)) / np.float32(_WEIGHT_BAND), 0.0, 1.0)
        alpha = cv2.GaussianBlur(alpha, (0, 0), shape.softness)
        ink = alpha >= INK_THRESHOLD
        rows = np.flatnonzero(ink.any(axis=1))
        cols = np.flatnonzero(ink.any(axis=0))
        if len(rows) == 0:
            return None
        # Keep a thin soft rim outside the ink; it lies outside the box by construction.
        y0, y1 = max(0, rows[0] - _RIM), min(out_h, rows[-1] + 1 + _RIM)
        x0, x1 = max(0, cols[0] - _RIM), min(out_w, cols[-1] + 1 + _RIM)
        return np.ascontiguousarray(alpha[y0:y1, x0:x1], dtype=np.float32)
