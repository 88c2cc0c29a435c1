"""Finding and checking the fonts the synthetic pages are written with.

The default font is IPAexGothic (``ipaexg.ttf``), which ships inside the japanize-matplotlib
package, so that the dataset looks the same on every machine. CJK fonts installed on the
system can be added on request.
"""

import functools
import importlib.util
import logging
import os

logger = logging.getLogger(__name__)

#: The bundled font: IPAexGothic as shipped in japanize-matplotlib (``fonts/ipaexg.ttf``).
BUNDLED_FONT_PACKAGE = 'japanize_matplotlib'
BUNDLED_FONT_FILE = os.path.join('fonts', 'ipaexg.ttf')

#: Where ``system_fonts=True`` looks (the usual Linux and macOS locations).
SYSTEM_FONT_DIRS = ('/usr/share/fonts', '/usr/local/share/fonts', '/Library/Fonts',
                    '/System/Library/Fonts')
FONT_EXTENSIONS = ('.ttf', '.otf', '.ttc', '.otc')

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


def missing_glyphs(path: str, chars) -> list:
    """Characters of ``chars`` that the font at ``path`` does not draw.

    A character counts as missing when it renders empty or exactly like an unmapped code
    point (the font's "tofu" box).

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

    tofu = signature(_UNMAPPED_CHAR)
    missing = []
    for ch in chars:
        size, data = signature(ch)
        if size[0] == 0 or size[1] == 0 or not any(data) or (size, data) == tofu:
            missing.append(ch)
    return missing


def check_font(path: str, chars, argument: str = 'font') -> str:
    """Return ``path`` (absolute) if it is a readable font that draws every character.

    Args:
        path: Font file given by the user.
        chars: The vocabulary.
        argument: Name of the option that gave the path, for the error message.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a font, or some characters are missing.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('{} {}: no such font file'.format(argument, path))
    chars = list(chars)
    try:
        missing = missing_glyphs(path, chars)
    except ValueError as e:
        raise ValueError('{} {}: {}'.format(argument, path, e)) from e
    if missing:
        raise ValueError('{} {} lacks {} of the {} vocabulary characters (e.g. {})'.format(
            argument, path, len(missing), len(chars), ''.join(missing[:10])))
    return os.path.abspath(path)


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
