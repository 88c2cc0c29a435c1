"""A recognised page in reading order, and its files: TXT, JSON, TEI P5 and a picture.

What NDL 古典籍OCR writes per page (SPEC section 12), from one :class:`RecognizedPage`:

* TXT: the main text, one column per line, blocks separated by an empty line; ruby left
  out, or inline after the characters it glosses in Aozora Bunko's brackets (``漢字《かんじ》``);
* JSON: the image's name and size, blocks -> columns -> characters (code, character, box,
  centre, detection and class scores, ruby flag, reading-order index) and the ruby groups;
  :func:`page_from_json` reads it back;
* TEI P5: a ``<facsimile>`` with one ``<surface>`` (the page, in pixels) holding a ``<zone>``
  per block, column and character, and the text with an ``<lb/>`` at the start of each
  column, every character a ``<c>`` pointing at its zone, ruby as ``<ruby><rb/><rt/></ruby>``;
* PNG: the page with the boxes (main text and ruby in two colours), the characters, and the
  reading path drawn through the characters' centres.
"""

import dataclasses
import logging
import math
import xml.etree.ElementTree as ET

import numpy as np

import kr
from kr import fileio
from kr.character import Character
from kr.reading.order import Block
from kr.reading.order import Column
from kr.reading.order import Layout
from kr.reading.order import reading_order
from kr.reading.order import RubyGroup

logger = logging.getLogger(__name__)

#: Version of the JSON written by :func:`page_to_json`.
JSON_FORMAT_VERSION = 1
#: Ruby inline in the TXT: Aozora Bunko's notation (base《reading》).
RUBY_OPEN = '《'
RUBY_CLOSE = '》'
#: ``ruby`` argument of :func:`page_text`.
RUBY_MODES = ('omit', 'inline')
#: TEI P5 namespace.
TEI_NS = 'http://www.tei-c.org/ns/1.0'
XML_ID = '{http://www.w3.org/XML/1998/namespace}id'
#: Decimals kept in the JSON: boxes to 0.01 px, scores to 1e-4.
BOX_DECIMALS = 2
SCORE_DECIMALS = 4
#: zlib level of the pictures: at the default (6) encoding took 1.2 of the 2.6 s that a
#: 2,400 x 3,900 page's picture cost; level 1 is several times faster, the file a little larger.
PNG_COMPRESS_LEVEL = 1
#: Picture colours: main characters, ruby, and the reading path.
MAIN_COLOR = '#1f77b4'
RUBY_COLOR = '#d62728'
PATH_COLOR = '#2ca02c'


@dataclasses.dataclass(frozen=True)
class RecognizedPage:
    """A page's characters and their reading structure.

    Attributes:
        image: The image's file name.
        width: Image width in pixels.
        height: Image height in pixels.
        characters: The characters (:class:`kr.character.Character`);
            the layout's indices point into this list.
        layout: :class:`kr.reading.order.Layout` of ``characters``.
    """
    image: str
    width: int
    height: int
    characters: tuple
    layout: Layout


def make_page(image: str, size, characters) -> RecognizedPage:
    """Order the characters of a page (:func:`kr.reading.order.reading_order`).

    Args:
        image: The image's file name.
        size: ``(width, height)`` in pixels.
        characters: Characters with ``bbox`` (xyxy page pixels) and ``detection_score``, in
            any order (a :meth:`kr.inference.PageRecognizer.recognize` result).
    """
    characters = tuple(characters)
    bboxes = np.asarray([c.bbox for c in characters], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray([c.detection_score for c in characters], dtype=np.float64)
    width, height = int(size[0]), int(size[1])
    layout = reading_order(bboxes, scores=scores, image_size=(width, height))
    return RecognizedPage(image=image, width=width, height=height, characters=characters,
                          layout=layout)


def _column_pieces(column: Column, chars, ruby: str):
    """The column's main text, with the ruby inline after its base when asked."""
    if ruby not in RUBY_MODES:
        raise ValueError('ruby must be one of {}, got {!r}'.format(', '.join(RUBY_MODES), ruby))
    after = {}
    if ruby == 'inline':
        for g in column.ruby:
            at = max(g.base[1] - 1, 0) if g.base[1] > g.base[0] else g.base[0] - 1
            after.setdefault(at, []).append(''.join(chars[i].char for i in g.chars))
    out = []
    if -1 in after:
        out.append(RUBY_OPEN + ''.join(after[-1]) + RUBY_CLOSE)
    for k, i in enumerate(column.chars):
        out.append(chars[i].char)
        if k in after:
            out.append(RUBY_OPEN + ''.join(after[k]) + RUBY_CLOSE)
    return ''.join(out)


def page_text(page: RecognizedPage, ruby: str = 'omit') -> str:
    """The TXT of a page: one column per line, an empty line between blocks.

    Args:
        page: The page.
        ruby: ``'omit'`` (the main text only) or ``'inline'`` (``base《ruby》``).

    Returns:
        str: Ends with a newline unless the page has no character (then ``''``).
    """
    blocks = ['\n'.join(_column_pieces(c, page.characters, ruby) for c in b.columns)
              for b in page.layout.blocks]
    return '\n\n'.join(blocks) + '\n' if blocks else ''


def _union(boxes):
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
            float(b[:, 3].max())]


def _rounded(values, decimals):
    return [round(float(v), decimals) for v in values]


def page_to_json(page: RecognizedPage) -> dict:
    """The JSON object of a page (see the module doc); characters keyed by reading order.

    Returns:
        dict: ``format_version``, ``image``, ``width``, ``height``, ``text`` (as
        :func:`page_text`), ``blocks``: each with ``bbox`` and ``columns``, each column with
        ``bbox``, ``text``, ``characters`` (reading order, ruby included and flagged) and
        ``ruby`` (groups: ``characters`` as ``order`` indices, ``base`` span of the column's
        main characters, ``side``). Boxes are ``[x_min, y_min, x_max, y_max]`` page pixels.
    """
    chars = page.characters
    rank = {int(i): k for k, i in enumerate(page.layout.order)}
    ruby_flags = page.layout.ruby

    def character(i):
        c = chars[i]
        return {'order': rank[i], 'unicode': c.unicode, 'char': c.char,
                'bbox': _rounded(c.bbox, BOX_DECIMALS),
                'center': _rounded(c.center, BOX_DECIMALS),
                'detection_score': round(float(c.detection_score), SCORE_DECIMALS),
                'class_score': round(float(c.class_score), SCORE_DECIMALS),
                'ruby': bool(ruby_flags[i])}

    blocks = []
    for b in page.layout.blocks:
        columns = []
        for col in b.columns:
            columns.append({
                'bbox': _rounded(_union([chars[i].bbox for i in col.order]), BOX_DECIMALS),
                'text': _column_pieces(col, chars, 'omit'),
                'characters': [character(i) for i in col.order],
                'ruby': [{'characters': [rank[i] for i in g.chars], 'base': list(g.base),
                          'side': g.side} for g in col.ruby]})
        blocks.append({'bbox': _rounded(_union([chars[i].bbox for i in b.order]), BOX_DECIMALS),
                       'columns': columns})
    return {'format_version': JSON_FORMAT_VERSION, 'image': page.image, 'width': page.width,
            'height': page.height, 'text': page_text(page), 'blocks': blocks}


def page_from_json(obj: dict, source: str = 'page JSON') -> RecognizedPage:
    """Read back :func:`page_to_json`: the characters come in reading order.

    Args:
        obj: The parsed JSON object.
        source: What to name in errors (the file).

    Raises:
        ValueError: Another format version, or a character missing or listed twice.
    """
    if obj.get('format_version') != JSON_FORMAT_VERSION:
        raise ValueError('{}: format version {}, this kr reads {}'.format(
            source, obj.get('format_version'), JSON_FORMAT_VERSION))
    found = {}
    for b in obj['blocks']:
        for col in b['columns']:
            for c in col['characters']:
                if c['order'] in found:
                    raise ValueError('{}: order {} listed twice'.format(source, c['order']))
                found[c['order']] = Character(
                    unicode=c['unicode'], char=c['char'], bbox=tuple(c['bbox']),
                    center=tuple(c['center']), detection_score=c['detection_score'],
                    class_score=c['class_score'])
    if sorted(found) != list(range(len(found))):
        raise ValueError('{}: the order indices are not 0..{}'.format(source, len(found) - 1))
    blocks = []
    for b in obj['blocks']:
        columns = []
        for col in b['columns']:
            groups = tuple(RubyGroup(chars=tuple(g['characters']), base=tuple(g['base']),
                                     side=g['side']) for g in col['ruby'])
            main = tuple(c['order'] for c in col['characters'] if not c['ruby'])
            columns.append(Column(chars=main, ruby=groups))
        blocks.append(Block(columns=tuple(columns)))
    return RecognizedPage(image=obj['image'], width=int(obj['width']), height=int(obj['height']),
                          characters=tuple(found[k] for k in range(len(found))),
                          layout=Layout(blocks=tuple(blocks), n=len(found)))


def write_json(page: RecognizedPage, path: str) -> None:
    """Write :func:`page_to_json` to ``path`` atomically."""
    fileio.write_json(path, page_to_json(page))


def write_text(page: RecognizedPage, path: str, ruby: str = 'omit') -> None:
    """Write :func:`page_text` to ``path`` (UTF-8) atomically."""
    text = page_text(page, ruby)
    with fileio.atomic_write(path) as f:
        f.write(text)


def _zone(parent, zone_id, kind, box):
    x1, y1, x2, y2 = box
    return ET.SubElement(parent, 'zone', {
        XML_ID: zone_id, 'type': kind, 'ulx': str(int(math.floor(x1))),
        'uly': str(int(math.floor(y1))), 'lrx': str(int(math.ceil(x2))),
        'lry': str(int(math.ceil(y2)))})


def page_tei(page: RecognizedPage) -> ET.ElementTree:
    """The TEI P5 document of a page (see the module doc).

    Zones: ``z-b<n>`` (block), ``z-b<n>-l<m>`` (column), ``z-c<k>`` (the character of reading
    order ``k``), numbered from 1, coordinates in whole pixels (boxes rounded outward).
    """
    tei = ET.Element('TEI', {'xmlns': TEI_NS})
    header = ET.SubElement(tei, 'teiHeader')
    desc = ET.SubElement(header, 'fileDesc')
    ET.SubElement(ET.SubElement(desc, 'titleStmt'), 'title').text = page.image
    ET.SubElement(ET.SubElement(desc, 'publicationStmt'), 'p').text = (
        'Recognised by kr {}'.format(kr.__version__))
    ET.SubElement(ET.SubElement(desc, 'sourceDesc'), 'p').text = (
        'Page image {}, {} x {} pixels'.format(page.image, page.width, page.height))
    surface = ET.SubElement(ET.SubElement(tei, 'facsimile'), 'surface', {
        'ulx': '0', 'uly': '0', 'lrx': str(page.width), 'lry': str(page.height)})
    ET.SubElement(surface, 'graphic', {'url': page.image, 'width': '{}px'.format(page.width),
                                        'height': '{}px'.format(page.height)})
    body = ET.SubElement(ET.SubElement(tei, 'text'), 'body')
    chars = page.characters
    rank = {int(i): k + 1 for k, i in enumerate(page.layout.order)}
    abs_ = []
    line = 0
    for bn, b in enumerate(page.layout.blocks, 1):
        _zone(surface, 'z-b{}'.format(bn), 'block', _union([chars[i].bbox for i in b.order]))
        div = ET.SubElement(body, 'div', {'type': 'block', 'n': str(bn),
                                          'facs': '#z-b{}'.format(bn)})
        ab = ET.SubElement(div, 'ab')
        lines = []
        for ln, col in enumerate(b.columns, 1):
            line += 1
            zone_id = 'z-b{}-l{}'.format(bn, ln)
            _zone(surface, zone_id, 'column', _union([chars[i].bbox for i in col.order]))
            for i in col.order:
                _zone(surface, 'z-c{}'.format(rank[i]), 'character', chars[i].bbox)
            lines.append((line, zone_id, col))
        abs_.append((ab, lines))
    if not page.layout.blocks:
        ET.SubElement(body, 'p')
    ET.indent(tei, space='  ')
    for ab, lines in abs_:
        _fill_ab(ab, lines, chars, rank)
    return ET.ElementTree(tei)


def _fill_ab(ab, lines, chars, rank):
    """One ``<lb/>`` and the characters of each column, a line of the file per column."""
    closing = (ab.tail or '\n') + '  '     # before </ab>
    inner = closing + '  '
    ab.text = inner

    def c(parent, i):
        el = ET.SubElement(parent, 'c', {'facs': '#z-c{}'.format(rank[i])})
        el.text = chars[i].char
        return el

    last = None
    for n, zone_id, col in lines:
        if last is not None:
            last.tail = inner
        last = ET.SubElement(ab, 'lb', {'n': str(n), 'facs': '#' + zone_id})
        pending = sorted(col.ruby, key=lambda g: g.base[0])
        k, count = 0, len(col.chars)
        while True:
            due = [g for g in pending if min(g.base[0], count) <= k]
            if due:
                for g in due:
                    pending.remove(g)
                    stop = max(min(g.base[1], count), k)
                    ruby = ET.SubElement(ab, 'ruby')
                    rb = ET.SubElement(ruby, 'rb')
                    for i in col.chars[k:stop]:
                        c(rb, i)
                    rt = ET.SubElement(ruby, 'rt')
                    for i in g.chars:
                        c(rt, i)
                    last, k = ruby, stop
                continue
            if k >= count:
                break
            last = c(ab, col.chars[k])
            k += 1
    if last is not None:
        last.tail = closing


def write_tei(page: RecognizedPage, path: str) -> None:
    """Write :func:`page_tei` to ``path`` (UTF-8, with an XML declaration) atomically."""
    tree = page_tei(page)
    with fileio.atomic_write(path, 'wb') as f:
        tree.write(f, encoding='utf-8', xml_declaration=True)
        f.write(b'\n')


def draw_reading(page: RecognizedPage, image, max_side: int = None):
    """The page with its boxes, characters and reading path (a matplotlib figure).

    Args:
        page: The page.
        image: Its PIL image or ``(H, W, 3)`` uint8 RGB array.
        max_side: Longest side of the picture (default
            :data:`kr.visualization.DEFAULT_MAX_SIDE`).
    """
    from kr.visualization import DEFAULT_MAX_SIDE
    from kr.visualization import draw_page
    from kr.datasets.image import to_array
    chars = page.characters
    order = page.layout.order
    ruby = page.layout.ruby
    boxes = np.asarray([chars[i].bbox for i in order], dtype=np.float64).reshape(-1, 4)
    max_side = max_side or DEFAULT_MAX_SIDE
    image = to_array(image)
    scale = max_side / float(max(image.shape[:2]))
    if scale < 1:
        # matplotlib would scale the page down anyway; doing it first (area averaging) is
        # several times faster on a 2,400 x 3,900 page
        import cv2
        size = (max(1, int(round(image.shape[1] * scale))),
                max(1, int(round(image.shape[0] * scale))))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        boxes = boxes * scale
    fig = draw_page(image, bboxes=boxes, texts=[chars[i].char for i in order],
                    colors=[RUBY_COLOR if ruby[i] else MAIN_COLOR for i in order],
                    title='{}: {} characters, {} columns'.format(
                        page.image, len(chars),
                        sum(len(b.columns) for b in page.layout.blocks)),
                    max_side=max_side)
    if len(order):
        ax = fig.axes[0]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        ax.plot(centres[:, 0], centres[:, 1], color=PATH_COLOR, linewidth=0.8, alpha=0.8)
        starts = [int(np.flatnonzero(order == c.order[0])[0])
                  for b in page.layout.blocks for c in b.columns]
        ax.scatter(centres[starts, 0], centres[starts, 1], s=12, c=PATH_COLOR, marker='o')
    return fig


def write_picture(page: RecognizedPage, image, path: str, max_side: int = None) -> None:
    """Write :func:`draw_reading` to ``path`` (format from the extension) atomically."""
    import matplotlib.pyplot as plt
    fig = draw_reading(page, image, max_side)
    try:
        with fileio.atomic_path(path) as tmp:
            kwargs = {}
            if path.lower().endswith('.png'):
                kwargs['pil_kwargs'] = {'compress_level': PNG_COMPRESS_LEVEL}
            fig.savefig(tmp, dpi=fig.dpi, **kwargs)
    finally:
        plt.close(fig)
