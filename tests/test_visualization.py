import numpy as np
import pytest
from PIL import Image

from kr.visualization import save_ground_truth
from kr.visualization import save_page


def test_save_page_size_and_content(tmp_path):
    page = np.full((300, 200, 3), 230, np.uint8)
    out = str(tmp_path / 'p.png')
    save_page(out, page, bboxes=np.array([[10, 10, 50, 60]]), texts=['あ'],
              points=np.array([[100, 100]]), point_texts=['い'], title='t')
    img = np.asarray(Image.open(out).convert('RGB'))
    assert img.shape == (300, 200, 3)
    assert (np.abs(img.astype(int) - 230).sum(axis=2) > 60).any()  # something was drawn


def test_large_pages_are_scaled_down(tmp_path):
    out = str(tmp_path / 'p.png')
    save_page(out, np.zeros((3900, 2400, 3), np.uint8), max_side=1000)
    assert Image.open(out).size == (615, 1000)


def test_save_ground_truth(tmp_path):
    from tests.datasets_tests.conftest import write_kaggle_dir
    data = write_kaggle_dir(tmp_path / 'k', [('b1_1', 'U+3042 1 2 30 40'), ('b2_1', '')], size=(64, 96))
    assert save_ground_truth(data, 'b1_1', str(tmp_path / 'o.png')) == 1
    assert Image.open(str(tmp_path / 'o.png')).size == (64, 96)
    with pytest.raises(ValueError, match='image_id nope is neither in train.csv'):
        save_ground_truth(data, 'nope', str(tmp_path / 'o2.png'))


def test_scored_page_colours(tmp_path):
    from matplotlib.colors import to_rgba
    import matplotlib.pyplot as plt
    from kr.visualization import draw_scored_page, FN_COLOR, FP_COLOR, TP_COLOR
    page = np.full((200, 100, 3), 255, np.uint8)
    gt_boxes = np.array([[10, 10, 40, 40], [10, 60, 40, 90]], np.float64)
    fig = draw_scored_page(page, ['U+3042', 'U+3044'], gt_boxes, ['U+3042', 'U+3046', 'U+3042'],
                           np.array([[25, 25], [80, 150], [26, 26]]), match=np.array([0, -1]))
    ax = fig.axes[0]
    edges = [p.get_edgecolor() for p in ax.patches]
    assert edges == [to_rgba(TP_COLOR), to_rgba(FN_COLOR)]
    points = ax.collections[0].get_facecolors().tolist()
    assert points == [list(to_rgba(TP_COLOR)), list(to_rgba(FP_COLOR)), list(to_rgba(FP_COLOR))]
    texts = [t.get_text() for t in ax.texts]
    assert texts[:5] == ['あ', 'い', 'あ', 'う', 'あ']
    assert texts[-1] == 'TP 1 (green)  FP 2 (red)  FN 1 (orange)'
    plt.close(fig)


def test_save_predictions_scored_and_unlabelled(tmp_path):
    from tests.datasets_tests.conftest import write_kaggle_dir
    from kr.visualization import save_predictions
    data = write_kaggle_dir(tmp_path / 'k', [('b1_1', 'U+3042 10 10 20 20 U+3044 10 40 20 20')],
                            test_ids=['t1_1'], size=(64, 96))
    sub = tmp_path / 'sub.csv'
    sub.write_text('image_id,labels\nb1_1,U+3042 20 20 U+3042 20 21 U+3046 5 5\nt1_1,U+3042 3 4\n')
    assert save_predictions(data, 'b1_1', str(sub), str(tmp_path / 'a.png')) == {
        'predictions': 3, 'tp': 1, 'fp': 2, 'fn': 1}
    assert save_predictions(data, 't1_1', str(sub), str(tmp_path / 'b.png')) == {'predictions': 1}
    assert Image.open(str(tmp_path / 'b.png')).size == (64, 96)
    with pytest.raises(ValueError, match='image_id nope has no row in'):
        save_predictions(data, 'nope', str(sub), str(tmp_path / 'c.png'))
