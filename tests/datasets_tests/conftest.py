import os

import numpy as np
import pytest
from PIL import Image


def write_kaggle_dir(root, train_rows, test_ids=(), size=(60, 80), codes=('U+3042', 'U+3044')):
    """A hand-made Kaggle-layout folder with plain grey pages.

    Args:
        root: Folder to create.
        train_rows: ``(image_id, labels)`` pairs for train.csv.
        test_ids: Test page ids (written to sample_submission.csv in this order).
        size: ``(width, height)`` of every page.
        codes: Rows of unicode_translation.csv.
    """
    root = str(root)
    for sub in ('train_images', 'test_images'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, 'train.csv'), 'w') as f:
        f.write('image_id,labels\n')
        for image_id, labels in train_rows:
            f.write('{},{}\n'.format(image_id, labels))
    with open(os.path.join(root, 'sample_submission.csv'), 'w') as f:
        f.write('image_id,labels\n')
        for image_id in test_ids:
            f.write('{},U+003F 1 1\n'.format(image_id))
    with open(os.path.join(root, 'unicode_translation.csv'), 'w', encoding='utf-8') as f:
        f.write('Unicode,char\n')
        for code in codes:
            f.write('{},{}\n'.format(code, chr(int(code[2:], 16))))
    w, h = size
    for i, (image_id, _) in enumerate(train_rows):
        page = np.full((h, w, 3), 200 + i, dtype=np.uint8)
        Image.fromarray(page).save(os.path.join(root, 'train_images', image_id + '.jpg'), quality=100)
    for image_id in test_ids:
        Image.fromarray(np.full((h, w, 3), 180, np.uint8)).save(
            os.path.join(root, 'test_images', image_id + '.jpg'))
    return root


@pytest.fixture
def kaggle_dir(tmp_path):
    rows = [
        ('bookA_001', 'U+3042 10 20 5 8 U+3044 30 40 10 10'),
        ('bookA_002', ''),
        ('bookB-001', 'U+3044 0 0 4 4'),
        ('bookC_001_1', 'U+3042 50 70 20 20'),
        ('bookD_001', 'U+3042 1 1 2 2'),
    ]
    return write_kaggle_dir(tmp_path / 'kaggle', rows, test_ids=['t2_1', 't1_1'])
