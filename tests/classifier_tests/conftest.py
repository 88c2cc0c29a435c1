import json
import os

import numpy as np
import pytest
from PIL import Image
from PIL import ImageDraw

#: Glyphs of the hand-made crop set (one class each), and rows of the class table that no
#: crop uses (the real table has such rows too).
USED_CHARS = 'のにしてはを'
UNUSED_CHARS = 'かな'


def _font(size):
    from kr.synthetic.fonts import bundled_font_path
    from PIL import ImageFont
    return ImageFont.truetype(bundled_font_path(), size=size)


def _draw_glyph(char, size, rng):
    """A glyph on a transparent canvas -> (RGBA image, (x1, y1, x2, y2) inked box)."""
    canvas = Image.new('L', (size * 2, size * 2), 0)
    ImageDraw.Draw(canvas).text((size // 2, size // 2), char, fill=255, font=_font(size))
    canvas = canvas.rotate(rng.uniform(-4, 4), resample=Image.BILINEAR)
    mask = np.asarray(canvas) > 64
    ys, xs = np.nonzero(mask)
    return canvas, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def make_page(chars, rng, page_size=(240, 240), cell=60):
    """A paper-coloured page with ``chars`` written in a grid -> (RGB array, (R, 4) boxes)."""
    w, h = page_size
    paper = np.array([225, 215, 190]) + rng.randint(-15, 15, 3)
    page = np.clip(paper + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(page)
    boxes = []
    per_row = w // cell
    for n, char in enumerate(chars):
        size = int(rng.randint(22, 40))
        glyph, (x1, y1, x2, y2) = _draw_glyph(char, size, rng)
        # Ink starts 0-7 pixels into its cell: the first row and column touch the page
        # border, so their padded crops reach outside the page.
        ox = (n % per_row) * cell + rng.randint(0, 8) - x1
        oy = (n // per_row) * cell + rng.randint(0, 8) - y1
        ink = tuple(int(v) for v in rng.randint(10, 60, 3))
        image.paste(Image.new('RGB', glyph.size, ink), (ox, oy), glyph)
        boxes.append((ox + x1, oy + y1, ox + x2, oy + y2))
    boxes = np.clip(np.array(boxes, dtype=np.float32), 0, [w, h, w, h])
    return np.asarray(image), boxes


def write_crop_set(root, n_train=16, n_val=4, seed=0):
    """A Kaggle-style class table and a script-02-style crop folder, made by hand.

    Returns ``{'data_dir', 'crop_dir', 'chars'}``; crops come from ``kr.datasets.crop_page``
    on pages with the glyphs of :data:`USED_CHARS`.
    """
    from kr.datasets import crop_page
    rng = np.random.RandomState(seed)
    data_dir = os.path.join(str(root), 'kuzushiji-recognition')
    crop_dir = data_dir + '-crops'
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, 'unicode_translation.csv'), 'w', encoding='utf-8') as f:
        f.write('Unicode,char\n')
        for char in UNUSED_CHARS[:1] + USED_CHARS + UNUSED_CHARS[1:]:
            f.write('U+{:04X},{}\n'.format(ord(char), char))
    indexes = {'train-0': [], 'val-0': []}
    for split, count in (('train-0', n_train), ('val-0', n_val)):
        for p in range(count):
            chars = list(USED_CHARS)
            rng.shuffle(chars)
            image, boxes = make_page(chars, rng)
            crops, crop_boxes = crop_page(image, boxes)
            page_id = '{}_{:03d}'.format(split, p)
            os.makedirs(os.path.join(crop_dir, 'char_images', page_id))
            for n, (crop, box, bbox, char) in enumerate(zip(crops, crop_boxes, boxes, chars)):
                rel = 'char_images/{}/{}_{:04d}.png'.format(page_id, page_id, n)
                Image.fromarray(crop).save(os.path.join(crop_dir, rel))
                indexes[split].append({
                    'image_path': rel, 'image_id': page_id,
                    'original_bbox': [float(v) for v in bbox],
                    'bbox': [float(bbox[0] - box[0]), float(bbox[1] - box[1]),
                             float(bbox[2] - box[0]), float(bbox[3] - box[1])],
                    'unicode': 'U+{:04X}'.format(ord(char)),
                })
    indexes['trainval'] = indexes['train-0'] + indexes['val-0']
    for name, records in indexes.items():
        with open(os.path.join(crop_dir, name + '.json'), 'w', encoding='utf-8') as f:
            json.dump(records, f)
    return {'data_dir': data_dir, 'crop_dir': crop_dir, 'chars': USED_CHARS}


@pytest.fixture(scope='session')
def crop_set(tmp_path_factory):
    """Hand-made crops of 6 classes: 16 train pages and 4 val pages of one glyph each.

    Read-only for tests: copy it before changing anything.
    """
    return write_crop_set(tmp_path_factory.mktemp('classifier_crops'))
