"""Finding and checking the fonts the synthetic pages are written with.

Real kuzushiji is brush-written, mostly in running (行書) and cursive (草書) hands, and
seldom looks like print. The generator therefore uses, when they are installed, the
public-domain brush fonts of Debian's ``fonts-kouzan-mouhitsu``, ``fonts-aoyagi-soseki`` and
``fonts-aoyagi-kouzan-t`` packages (:data:`BRUSH_FONTS`; ``make install`` installs them where
it runs as root with apt). IPAexGothic (``ipaexg.ttf``), which ships inside the
japanize-matplotlib package, is always there: it is the print font of the set and the
fallback when no brush font is installed (the generator says so). Other CJK fonts installed
on the system can be added on request (SPEC section 8).

A font may lack glyphs (AoyagiKouzanT has no 氣, 與, 兮...): coverage is checked per font
and character (:func:`font_coverage`), and a character a font lacks is never drawn with it.
"""

import functools
import importlib.util
import logging
import os

import numpy as np

logger = logging.getLogger(__name__)

#: The bundled font: IPAexGothic as shipped in japanize-matplotlib (``fonts/ipaexg.ttf``).
BUNDLED_FONT_PACKAGE = 'japanize_matplotlib'
BUNDLED_FONT_FILE = os.path.join('fonts', 'ipaexg.ttf')

#: Where ``system_fonts=True`` looks (the usual Linux and macOS locations).
SYSTEM_FONT_DIRS = ('/usr/share/fonts', '/usr/local/share/fonts', '/Library/Fonts',
                    '/System/Library/Fonts')
FONT_EXTENSIONS = ('.ttf', '.otf', '.ttc', '.otc')

#: Brush fonts used by default when installed: file name and hand. ``'cursive'``: running
#: and cursive hands (草書, 行書), the most common in the Kaggle books; ``'brush'``: brush
#: fonts closer to the regular hand. All are public domain, from Debian's packages
#: :data:`BRUSH_FONT_PACKAGES`.
BRUSH_FONTS = (
    ('KouzanBrushFontSousyo.ttf', 'cursive'),     # fonts-kouzan-mouhitsu, 草書
    ('kouzan-mouhitsu-gyosho.ttf', 'cursive'),    # fonts-kouzan-mouhitsu, 行書
    ('aoyagi-soseki.ttf', 'cursive'),             # fonts-aoyagi-soseki, a running hand
    ('kouzan-mouhitsu.ttf', 'brush'),             # fonts-kouzan-mouhitsu
    ('AoyagiKouzanT.ttf', 'brush'),               # fonts-aoyagi-kouzan-t
)
BRUSH_FONT_PACKAGES = ('fonts-kouzan-mouhitsu', 'fonts-aoyagi-soseki', 'fonts-aoyagi-kouzan-t')
#: Hands of the fonts, and the chance that a book is written in each when the machine has
#: fonts of all three: cursive and brush hands most common, print rare (the Kaggle books are
#: hand-written or cut from hand-written blocks). A hand without fonts gives its share to
#: the others in proportion.
FONT_STYLES = ('cursive', 'brush', 'print')
FONT_STYLE_WEIGHTS = {'cursive': 0.55, 'brush': 0.35, 'print': 0.1}
#: The hand of the bundled font and of extra fonts whose name is not in BRUSH_FONTS.
BUNDLED_FONT_STYLE = 'print'
EXTRA_FONT_STYLE = 'print'

#: Size at which glyph coverage is probed (pixels); big enough that no real glyph is empty.
_PROBE_SIZE = 32
#: A code point no font maps (last private-use plane), rendered to learn what "missing" looks like.
_UNMAPPED_CHAR = '\U0010FFFD'


def bundled_font_path() -> str:
    """Path of ``ipaexg.ttf`` inside the installed japanize-matplotlib (not imported).

    Raises:
        FileNotFoundError: The package or its font file is missing.
    """
    spec = importlib.util.find_spec(BUNDLED_FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            'the synthetic dataset needs the IPAexGothic font from the {} package; '
            'install it with `pip install japanize-matplotlib`'.format(BUNDLED_FONT_PACKAGE))
    for location in spec.submodule_search_locations:
        path = os.path.join(location, BUNDLED_FONT_FILE)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError('{} is installed but has no {} (looked in {})'.format(
        BUNDLED_FONT_PACKAGE, BUNDLED_FONT_FILE, list(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=64)
def load_font(path: str, size: int):
    """A cached :class:`PIL.ImageFont.FreeTypeFont` (first face of a collection)."""
    from PIL import ImageFont
    return ImageFont.truetype(path, size=size, index=0)


@functools.lru_cache(maxsize=16)
def _character_map(path: str):
    """Code points of the font's best character map, or None where fontTools cannot tell."""
    try:
        from fontTools.ttLib import TTFont
        return frozenset(TTFont(path, fontNumber=0, lazy=True).getBestCmap() or ())
    except Exception:   # not a TrueType/OpenType file, or no fontTools: rendering decides
        return None


def missing_glyphs(path: str, chars) -> list:
    """Characters of ``chars`` that the font at ``path`` does not draw.

    A character counts as missing when the font's character map (read with fontTools) has no
    entry for it, or when it renders empty or exactly like an unmapped code point (the
    font's "tofu" box): some fonts map code points to empty glyphs.

    Args:
        path: Font file.
        chars: Iterable of single characters.

    Returns:
        list of str: The missing characters, in the order given.

    Raises:
        ValueError: The file cannot be read as a font.
    """
    try:
        font = load_font(path, _PROBE_SIZE)
    except OSError as e:
        raise ValueError('cannot read {} as a font: {}'.format(path, e)) from e

    def signature(ch):
        mask = font.getmask(ch)
        return mask.size, bytes(mask)

    cmap = _character_map(path)
    tofu = signature(_UNMAPPED_CHAR)
    missing = []
    for ch in chars:
        if cmap is not None and ord(ch) not in cmap:
            missing.append(ch)
            continue
        size, data = signature(ch)
        if size[0] == 0 or size[1] == 0 or not any(data) or (size, data) == tofu:
            missing.append(ch)
    return missing


def check_font(path: str, chars, argument: str = 'font') -> str:
    """Return ``path`` (absolute) if it is a readable font that draws some characters.

    Characters the font lacks are drawn with another font (:func:`font_coverage`, whose
    caller reports them); a font that draws none of the vocabulary is refused.

    Args:
        path: Font file given by the user.
        chars: The vocabulary.
        argument: Name of the option that gave the path, for the error message.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a font, or it draws none of the characters.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('{} {}: no such font file'.format(argument, path))
    chars = list(chars)
    try:
        missing = missing_glyphs(path, chars)
    except ValueError as e:
        raise ValueError('{} {}: {}'.format(argument, path, e)) from e
    if len(missing) == len(chars):
        raise ValueError('{} {} draws none of the {} vocabulary characters (e.g. {})'.format(
            argument, path, len(chars), ''.join(missing[:10])))
    return os.path.abspath(path)


def font_style(path: str) -> str:
    """The hand of a font file: its :data:`BRUSH_FONTS` entry, else ``'print'``."""
    return dict(BRUSH_FONTS).get(os.path.basename(path), EXTRA_FONT_STYLE)


def find_brush_fonts(roots=SYSTEM_FONT_DIRS) -> list:
    """The installed :data:`BRUSH_FONTS`, in that table's order.

    Args:
        roots: Folders searched recursively (default: the system's font folders).

    Returns:
        list of str: Absolute paths; for a name found more than once, the first in sorted
        path order, so that the result does not depend on the file system's listing order.
    """
    wanted = {name for name, _ in BRUSH_FONTS}
    found = {}
    for root in roots:
        for dirpath, dirnames, names in os.walk(root):
            dirnames.sort()
            for name in sorted(names):
                if name in wanted and name not in found:
                    found[name] = os.path.abspath(os.path.join(dirpath, name))
    return [found[name] for name, _ in BRUSH_FONTS if name in found]


def font_coverage(paths, chars) -> list:
    """Which characters each font draws.

    Args:
        paths: Font files.
        chars: The vocabulary, as a sequence of single characters.

    Returns:
        list of tuple of bool: one tuple per font, ``len(chars)`` long, true where the font
        draws the character (:func:`missing_glyphs`).

    Raises:
        ValueError: A file cannot be read as a font.
    """
    chars = list(chars)
    out = []
    for path in paths:
        missing = set(missing_glyphs(path, chars))
        out.append(tuple(c not in missing for c in chars))
    return out


def style_weights(styles) -> list:
    """Chance of each font to be a book's font, from :data:`FONT_STYLE_WEIGHTS`.

    A hand's share is split evenly among its fonts; hands without fonts give their share to
    the others in proportion.

    Args:
        styles: The hand of each font (:data:`FONT_STYLES`).

    Returns:
        list of float: Sums to 1.
    """
    counts = {s: sum(1 for t in styles if t == s) for s in FONT_STYLES}
    raw = [FONT_STYLE_WEIGHTS[s] / counts[s] for s in styles]
    total = sum(raw)
    return [w / total for w in raw]


def book_fonts(rng, n_books: int, weights) -> list:
    """The font of each of ``n_books`` books of one split, in proportion to ``weights``.

    Systematic sampling: each font gets the floor or the ceiling of ``n_books * weight``
    books (which of the two at random), in a random order. Drawn independently per book, the
    fonts of a set of a few dozen books came out far from their weights (with 23 training
    books a 0.18 font had 1 book, and 4 of the 9 test books were in it): the classifier then
    met test books in hands it had hardly seen.

    Args:
        rng: ``numpy.random.Generator``.
        n_books: Number of books (>= 0).
        weights: Chance of each font (:func:`style_weights`), summing to 1.

    Returns:
        list of int: Font index per book.
    """
    edges = np.cumsum(np.asarray(weights, dtype=np.float64)) * n_books
    points = rng.uniform() + np.arange(n_books)
    fonts = np.minimum(np.searchsorted(edges, points, side='right'), len(weights) - 1)
    return [int(f) for f in rng.permutation(fonts)]


def find_system_fonts(chars, roots=SYSTEM_FONT_DIRS) -> list:
    """Installed font files that draw every character of ``chars``.

    Args:
        chars: The vocabulary.
        roots: Folders searched recursively.

    Returns:
        list of str: Absolute paths, sorted so that the choice does not depend on the
        order in which the file system lists them.
    """
    chars = list(chars)
    candidates = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            candidates.extend(os.path.join(dirpath, n) for n in names
                              if n.lower().endswith(FONT_EXTENSIONS))
    found = []
    for path in sorted(candidates):
        try:
            # Probe one kana first: most system fonts are Latin-only and fail at once.
            if missing_glyphs(path, chars[:1]) or missing_glyphs(path, chars):
                continue
        except ValueError:
            continue
        found.append(os.path.abspath(path))
    logger.info('system fonts covering the vocabulary: %d of %d font files', len(found),
                len(candidates))
    return found
