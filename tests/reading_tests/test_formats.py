import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from kr.inference import Character
from kr.reading.formats import make_page
from kr.reading.formats import page_from_json
from kr.reading.formats import page_tei
from kr.reading.formats import page_text
from kr.reading.formats import page_to_json
from kr.reading.formats import write_json
from kr.reading.formats import write_picture
from kr.reading.formats import write_tei
from kr.reading.formats import write_text

TEI = '{http://www.tei-c.org/ns/1.0}'
XML_ID = '{http://www.w3.org/XML/1998/namespace}id'


def column(x, n, y0=0.0, size=10.0, step=12.0):
    return [[x - size / 2, y0 + k * step, x + size / 2, y0 + k * step + size] for k in range(n)]


def characters(text, boxes):
    return [Character(unicode='U+{:04X}'.format(ord(t)), char=t, bbox=tuple(b),
                      center=((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), detection_score=0.875,
                      class_score=0.75) for t, b in zip(text, boxes)]


@pytest.fixture
def page():
    # column 1: かんじあ with the ruby かな beside ん and じ; column 2: いうえお;
    # then a page number under the text (its own block)
    boxes = column(100, 4) + column(110, 2, y0=15, size=6, step=10) + column(75, 4) + [
        [96, 80, 104, 88]]
    chars = characters('かんじあかないうえお一', boxes)
    # recognizers return characters by score, not in reading order
    return make_page('page.jpg', (160, 200), chars[::-1])


def test_text_omits_or_inlines_ruby(page):
    assert page_text(page) == 'かんじあ\nいうえお\n\n一\n'
    assert page_text(page, ruby='inline') == 'かんじ《かな》あ\nいうえお\n\n一\n'
    with pytest.raises(ValueError, match='ruby must be one of omit, inline'):
        page_text(page, ruby='brackets')
    empty = make_page('blank.png', (10, 10), [])
    assert page_text(empty) == '' and page_to_json(empty)['blocks'] == []


def test_json_structure_and_round_trip(page, tmp_path):
    obj = page_to_json(page)
    assert (obj['format_version'], obj['image'], obj['width'], obj['height']) == (
        1, 'page.jpg', 160, 200)
    assert obj['text'] == 'かんじあ\nいうえお\n\n一\n'
    assert [len(b['columns']) for b in obj['blocks']] == [2, 1]
    first = obj['blocks'][0]['columns'][0]
    assert first['text'] == 'かんじあ'
    assert [c['char'] for c in first['characters']] == list('かなかんじあ')
    assert [c['order'] for c in first['characters']] == [0, 1, 2, 3, 4, 5]
    assert [c['ruby'] for c in first['characters']] == [True, True] + [False] * 4
    assert first['ruby'] == [{'characters': [0, 1], 'base': [1, 3], 'side': 'right'}]
    assert first['bbox'] == [95.0, 0.0, 113.0, 46.0]
    assert first['characters'][2] == {
        'order': 2, 'unicode': 'U+304B', 'char': 'か', 'bbox': [95.0, 0.0, 105.0, 10.0],
        'center': [100.0, 5.0], 'detection_score': 0.875, 'class_score': 0.75, 'ruby': False}
    path = str(tmp_path / 'page.json')
    write_json(page, path)
    with open(path, encoding='utf-8') as f:
        read = page_from_json(json.load(f), source=path)
    assert page_to_json(read) == obj
    assert page_text(read, ruby='inline') == page_text(page, ruby='inline')
    assert [c.char for c in read.characters] == list('かなかんじあいうえお一')
    assert read.layout.order.tolist() == list(range(11))
    with pytest.raises(ValueError, match='page.json: format version 9'):
        page_from_json(dict(obj, format_version=9), source='page.json')


def test_tei_is_well_formed_with_zones_and_line_breaks(page, tmp_path):
    path = str(tmp_path / 'page.tei.xml')
    write_tei(page, path)
    with open(path, 'rb') as f:
        assert f.read().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.parse(path).getroot()
    assert root.tag == TEI + 'TEI'
    assert root.find(TEI + 'teiHeader/' + TEI + 'fileDesc/' + TEI + 'titleStmt/'
                     + TEI + 'title').text == 'page.jpg'
    surface = root.find(TEI + 'facsimile/' + TEI + 'surface')
    assert (surface.get('lrx'), surface.get('lry')) == ('160', '200')
    zones = surface.findall(TEI + 'zone')
    kinds = [z.get('type') for z in zones]
    assert kinds.count('block') == 2 and kinds.count('column') == 3
    assert kinds.count('character') == 11
    by_id = {z.get(XML_ID): z for z in zones}
    assert [by_id['z-b1-l1'].get(k) for k in ('ulx', 'uly', 'lrx', 'lry')] == [
        '95', '0', '113', '46']
    assert [by_id['z-c1'].get(k) for k in ('ulx', 'uly', 'lrx', 'lry')] == [
        '107', '15', '113', '21']
    body = root.find(TEI + 'text/' + TEI + 'body')
    divs = body.findall(TEI + 'div')
    assert [d.get('facs') for d in divs] == ['#z-b1', '#z-b2']
    lbs = body.findall('.//' + TEI + 'lb')
    assert [(lb.get('n'), lb.get('facs')) for lb in lbs] == [
        ('1', '#z-b1-l1'), ('2', '#z-b1-l2'), ('3', '#z-b2-l1')]
    ruby = body.find('.//' + TEI + 'ruby')
    assert ''.join(ruby.find(TEI + 'rb').itertext()) == 'んじ'
    assert ''.join(ruby.find(TEI + 'rt').itertext()) == 'かな'
    # every <c> points at an existing character zone; the text reads in order
    cs = body.findall('.//' + TEI + 'c')
    assert all(by_id[c.get('facs')[1:]].get('type') == 'character' for c in cs)
    ab = divs[0].find(TEI + 'ab')
    assert ''.join(ab.itertext()).split() == ['かんじかなあ', 'いうえお']
    empty = ET.fromstring(ET.tostring(page_tei(make_page('blank.png', (10, 10), [])).getroot()))
    assert empty.find(TEI + 'facsimile/' + TEI + 'surface').findall(TEI + 'zone') == []


def test_text_and_picture_files(page, tmp_path):
    write_text(page, str(tmp_path / 'page.txt'), ruby='inline')
    assert (tmp_path / 'page.txt').read_text(encoding='utf-8') == (
        'かんじ《かな》あ\nいうえお\n\n一\n')
    image = np.full((200, 160, 3), 255, dtype=np.uint8)
    write_picture(page, image, str(tmp_path / 'page.png'))
    from PIL import Image
    with Image.open(str(tmp_path / 'page.png')) as im:
        assert im.format == 'PNG' and im.size == (160, 200)
    assert sorted(os.listdir(str(tmp_path))) == ['page.png', 'page.txt']
