import json
import os

import pytest

from kr import fileio


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = str(tmp_path / 'a.txt')
    with fileio.atomic_write(path) as f:
        f.write('one')
    with pytest.raises(RuntimeError):
        with fileio.atomic_write(path) as f:
            f.write('two, half-')
            raise RuntimeError('interrupted')
    assert open(path).read() == 'one'
    assert os.listdir(str(tmp_path)) == ['a.txt']


def test_atomic_path_keeps_extension(tmp_path):
    with fileio.atomic_path(str(tmp_path / 'x.png')) as tmp:
        assert tmp.endswith('.png') and os.path.dirname(tmp) == str(tmp_path)
        open(tmp, 'w').write('x')
    assert os.listdir(str(tmp_path)) == ['x.png']


def test_write_json_keeps_japanese(tmp_path):
    path = str(tmp_path / 'a.json')
    fileio.write_json(path, {'char': 'お'})
    assert 'お' in open(path, encoding='utf-8').read()
    assert json.load(open(path, encoding='utf-8')) == {'char': 'お'}


def test_atomic_directory(tmp_path):
    out = str(tmp_path / 'out')
    with fileio.atomic_directory(out) as tmp:
        open(os.path.join(tmp, 'f'), 'w').write('1')
        assert not os.path.exists(out)
    assert os.listdir(out) == ['f']
    with pytest.raises(FileExistsError, match='out already exists; pass --overwrite'):
        with fileio.atomic_directory(out):
            pass
    with pytest.raises(RuntimeError):
        with fileio.atomic_directory(out, overwrite=True) as tmp:
            open(os.path.join(tmp, 'g'), 'w').write('2')
            raise RuntimeError('interrupted')
    assert os.listdir(out) == ['f']  # the old folder survives a failed replacement
    with fileio.atomic_directory(out, overwrite=True) as tmp:
        open(os.path.join(tmp, 'g'), 'w').write('2')
    assert os.listdir(out) == ['g']
    assert os.listdir(str(tmp_path)) == ['out']
