import numpy as np
import pytest

from kr.datasets import KuzushijiUnicodeMapping


def write(path, text):
    path.write_text(text, encoding='utf-8')
    return str(path)


def test_round_trips(tmp_path):
    m = KuzushijiUnicodeMapping(write(tmp_path / 'u.csv', 'Unicode,char\nU+0031,1\nU+304A,お\nU+5DE5,工\n'))
    assert len(m) == 3
    assert m.unicodes == ['U+0031', 'U+304A', 'U+5DE5']
    for i, u in enumerate(m.unicodes):
        assert m.unicode_to_index(u) == i
        assert m.index_to_unicode(i) == u
    assert m.unicode_to_char('U+304A') == 'お'
    assert m.index_to_char(2) == '工'
    np.testing.assert_array_equal(m.encode(['U+5DE5', 'U+0031']), np.array([2, 0], np.int32))
    assert m.encode(['U+5DE5']).dtype == np.int32
    assert m.decode([1, 0]) == ['U+304A', 'U+0031']
    assert 'U+304A' in m and 'U+3042' not in m


def test_accepts_data_folder(tmp_path):
    write(tmp_path / 'unicode_translation.csv', 'Unicode,char\nU+3042,あ\n')
    assert KuzushijiUnicodeMapping(str(tmp_path)).unicodes == ['U+3042']


def test_errors(tmp_path):
    path = write(tmp_path / 'u.csv', 'Unicode,char\nU+3042,あ\n')
    m = KuzushijiUnicodeMapping(path)
    with pytest.raises(ValueError, match=r"unknown unicode 'U\+9999': not in .*u.csv"):
        m.unicode_to_index('U+9999')
    with pytest.raises(ValueError, match=r'class index 1 out of range \[0, 1\)'):
        m.index_to_unicode(1)
    with pytest.raises(FileNotFoundError, match='00_make_synthetic_dataset'):
        KuzushijiUnicodeMapping(str(tmp_path / 'missing'))
    with pytest.raises(ValueError, match='u2.csv:3: U\\+3042 appears twice'):
        KuzushijiUnicodeMapping(write(tmp_path / 'u2.csv', 'Unicode,char\nU+3042,あ\nU+3042,あ\n'))
    with pytest.raises(ValueError, match='u3.csv:1: expected the header'):
        KuzushijiUnicodeMapping(write(tmp_path / 'u3.csv', 'code,char\nU+3042,あ\n'))
    with pytest.raises(ValueError, match=r"u4.csv:2: 'X' is not a code"):
        KuzushijiUnicodeMapping(write(tmp_path / 'u4.csv', 'Unicode,char\nX,あ\n'))
