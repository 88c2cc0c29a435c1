import os

import numpy as np
import pytest
from PIL import Image

from kr.inference import Character
from kr.reading import pages
from kr.reading.pages import find_images
from kr.reading.pages import load_page_image
from kr.reading.pages import parse_formats
from kr.reading.pages import recognize_pages


class FixedRecognizer:
    """Two characters in one column, whatever the page (detector-score order)."""

    def __init__(self):
        self.calls = 0

    def recognize(self, image):
        self.calls += 1
        return [Character('U+3044', 'い', (10.0, 30.0, 20.0, 40.0), (15.0, 35.0), 0.8, 0.9),
                Character('U+3042', 'あ', (10.0, 10.0, 20.0, 20.0), (15.0, 15.0), 0.9, 0.9)]


def save(path, array, mode=None, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode).save(path, **kwargs)


def listing(folder):
    return sorted(os.path.relpath(os.path.join(r, n), folder)
                  for r, _, names in os.walk(folder) for n in names)


def test_colour_modes(tmp_path):
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 0            # transparent: white
    rgba[1:, :, 3] = 255
    save(str(tmp_path / 'a.png'), rgba, 'RGBA')
    got = load_page_image(str(tmp_path / 'a.png'))
    assert got.shape == (4, 6, 3) and got.dtype == np.uint8
    assert got[0, 0].tolist() == [255, 255, 255] and got[1, 0].tolist() == [200, 0, 0]
    grey16 = np.array([[0, 65535], [257 * 128, 257]], dtype=np.uint16)
    Image.fromarray(grey16).save(str(tmp_path / 'g.tif'))       # mode I;16
    got = load_page_image(str(tmp_path / 'g.tif'))
    assert got[..., 0].tolist() == [[0, 255], [128, 1]] and (got[..., 1] == got[..., 0]).all()
    save(str(tmp_path / 'l.jpg'), np.full((5, 3), 77, dtype=np.uint8), 'L')
    assert load_page_image(str(tmp_path / 'l.jpg')).shape == (5, 3, 3)
    (tmp_path / 'bad.jpg').write_bytes(b'not an image')
    with pytest.raises(ValueError, match='cannot read image .*bad.jpg'):
        load_page_image(str(tmp_path / 'bad.jpg'))
    with pytest.raises(FileNotFoundError, match='none.png'):
        load_page_image(str(tmp_path / 'none.png'))


def test_find_images_walks_sorted_and_mirrors(tmp_path):
    for name in ('b.jpg', 'a.PNG', 'sub/c.tif', '.hidden/d.jpg', 'notes.txt', '.e.jpg'):
        path = tmp_path / 'in' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'')
    single = tmp_path / 'one.jpeg'
    single.write_bytes(b'')
    found = find_images([str(tmp_path / 'in'), str(single)])
    assert [(os.path.relpath(p, str(tmp_path)), n) for p, n in found] == [
        ('in/a.PNG', 'a'), ('in/b.jpg', 'b'), ('in/sub/c.tif', os.path.join('sub', 'c')),
        ('one.jpeg', 'one')]
    with pytest.raises(FileNotFoundError, match='input .*missing.jpg not found'):
        find_images([str(tmp_path / 'missing.jpg')])
    (tmp_path / 'in' / 'b.png').write_bytes(b'')
    with pytest.raises(ValueError, match=r'b.jpg and .*b.png would write the same files'):
        find_images([str(tmp_path / 'in')])


def test_formats_are_checked():
    assert parse_formats('txt, JSON,txt') == ('txt', 'json')
    assert parse_formats(['png']) == ('png',)
    for bad in ('xml', '', 'txt,pdf'):
        with pytest.raises(ValueError, match='--format .*choose from txt,json,tei,png'):
            parse_formats(bad)


def test_recognize_skip_failures_and_overwrite(tmp_path):
    inp, out = str(tmp_path / 'in'), str(tmp_path / 'out')
    save(os.path.join(inp, 'p1.png'), np.full((50, 40, 3), 250, dtype=np.uint8))
    save(os.path.join(inp, 'sub', 'p2.jpg'), np.full((50, 40, 3), 250, dtype=np.uint8))
    os.makedirs(inp, exist_ok=True)
    with open(os.path.join(inp, 'p0.jpg'), 'wb') as f:
        f.write(b'\xff\xd8 broken')
    rec = FixedRecognizer()
    result = recognize_pages(rec, [inp], out, formats='txt,json')
    assert [os.path.basename(p) for p in result.done] == ['p1.png', 'p2.jpg']
    assert [os.path.basename(p) for p, _ in result.failed] == ['p0.jpg']
    assert 'p0.jpg' in result.failed[0][1] and result.skipped == []
    assert listing(out) == ['p1.json', 'p1.txt', 'sub/p2.json', 'sub/p2.txt']
    assert open(os.path.join(out, 'p1.txt'), encoding='utf-8').read() == 'あい\n'
    again = recognize_pages(rec, [inp], out, formats='txt,json')
    assert again.done == [] and len(again.skipped) == 2 and rec.calls == 2
    # a new format makes the pages not done; overwrite does them all
    assert len(recognize_pages(rec, [inp], out, formats='txt,tei').done) == 2
    assert len(recognize_pages(rec, [inp], out, formats='txt', overwrite=True).done) == 2
    assert rec.calls == 6


def test_interrupted_page_leaves_no_file(tmp_path, monkeypatch):
    inp, out = str(tmp_path / 'in'), str(tmp_path / 'out')
    for name in ('a.png', 'b.png'):
        save(os.path.join(inp, name), np.full((50, 40, 3), 250, dtype=np.uint8))
    real = pages.formats_lib.write_tei

    def write_tei(page, path):
        if page.image == 'b.png':
            raise KeyboardInterrupt
        real(page, path)

    monkeypatch.setattr(pages.formats_lib, 'write_tei', write_tei)
    with pytest.raises(KeyboardInterrupt):
        recognize_pages(FixedRecognizer(), [inp], out, formats='txt,json,tei')
    # b's TXT and JSON were complete but are not left without its TEI; no temporary files
    assert listing(out) == ['a.json', 'a.tei.xml', 'a.txt']
