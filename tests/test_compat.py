"""kr._compat: Chainer 7.8.1 imports and runs on the installed Python and NumPy."""

import importlib.util
import subprocess
import sys
import warnings

import numpy as np
import pytest

import kr  # noqa: F401  (applies kr._compat)
from kr import _compat


def _probe_imports():
    """Whether Chainer's own environment check can import here (a fresh interpreter)."""
    code = ('import numpy.distutils.system_info, pkg_resources')
    return subprocess.run([sys.executable, '-W', 'ignore', '-c', code],
                          capture_output=True).returncode == 0


def test_sctypes_after_import():
    assert [t.__name__ for t in np.sctypes['int']] == ['int8', 'int16', 'int32', 'int64']
    assert [t.__name__ for t in np.sctypes['uint']] == ['uint8', 'uint16', 'uint32', 'uint64']
    assert np.sctypes['float'][:3] == [np.float16, np.float32, np.float64]
    assert np.complex128 in np.sctypes['complex']


def test_chainer_imports_and_as_strided_runs():
    import chainer
    import chainer.functions as F
    assert chainer.__version__ == '7.8.1'
    x = chainer.Variable(np.arange(6, dtype=np.float32))
    y = F.as_strided(x, (2, 2), (2, 1))  # rows [0, 1] and [2, 3]: strides in elements
    np.testing.assert_array_equal(y.array, [[0, 1], [2, 3]])
    y.grad = np.ones((2, 2), dtype=np.float32)
    y.backward()  # reads numpy.sctypes['float']
    np.testing.assert_array_equal(x.grad, [1, 1, 1, 1, 0, 0])


@pytest.mark.parametrize('kwargs, expected', [
    ({'align_corners': True}, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]]),
    ({'mode': 'nearest'}, [[0, 0, 1], [0, 0, 1], [2, 2, 3]]),
])
def test_resize_images(kwargs, expected):
    import chainer.functions as F
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    y = F.resize_images(x, (3, 3), **kwargs)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.array[0, 0], expected, rtol=0, atol=1e-6)


def test_resize_images_align_corners_false_and_backward():
    import chainer
    import chainer.functions as F
    x = chainer.Variable(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2))
    y = F.resize_images(x, (4, 4), align_corners=False)
    np.testing.assert_allclose(y.array[0, 0, 0], [0, 0.25, 0.75, 1], rtol=0, atol=1e-6)
    F.sum(y).backward()
    np.testing.assert_allclose(x.grad[0, 0], np.full((2, 2), 4.0), rtol=0, atol=1e-5)


def test_numpy_itself_not_given_float():
    # the resize fix is local to chainer's function, NumPy keeps its own namespace
    major, minor = (int(v) for v in np.__version__.split('.')[:2])
    if (major, minor) >= (1, 24):
        assert not hasattr(np, 'float')


def test_environment_check_is_chainer_s_where_it_imports():
    import chainer  # noqa: F401
    module = sys.modules['chainer._environment_check']
    assert module.__file__.endswith('chainer/_environment_check.py')
    if _probe_imports():
        assert module.check is not _compat.check_optional_dependencies
        assert not hasattr(module, 'stand_in_reason')
    else:
        assert module.check is _compat.check_optional_dependencies
        assert ("'numpy.distutils'" in module.stand_in_reason
                or "'pkg_resources'" in module.stand_in_reason), module.stand_in_reason


def test_import_kr_imports_neither_chainer_nor_distutils():
    code = ('import sys, kr; print(sorted(m for m in ("chainer", "numpy.distutils", '
            '"pkg_resources") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'


def test_apply_is_idempotent():
    import chainer.functions.array.resize_images as R
    before = (np.sctypes, R.compute_indices_and_weights, sys.modules['chainer._environment_check'],
              list(sys.meta_path))
    _compat.apply()
    _compat.apply()
    after = (np.sctypes, R.compute_indices_and_weights, sys.modules['chainer._environment_check'],
             list(sys.meta_path))
    assert all(a is b for a, b in zip(before[:3], after[:3]))
    assert before[3] == after[3]
    assert sum(isinstance(f, _compat._ChainerImportHook) for f in sys.meta_path) == 1


def test_noop_where_not_needed():
    """In a fresh interpreter: NumPy's own sctypes is kept, and with an older NumPy that still
    has ``float``, resize_images is left as Chainer wrote it."""
    code = '''
import numpy
own = getattr(numpy, "sctypes", None)
numpy.float = float  # as NumPy < 1.24 had it
import kr, chainer.functions.array.resize_images as R
print(own is None or numpy.sctypes is own, hasattr(R.compute_indices_and_weights, "_kr_compat"))
'''
    out = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['True', 'False']


def test_patch_applied_after_a_late_chainer_import():
    """kr imported first, Chainer later: the import hook patches resize_images."""
    code = '''
import sys, kr
assert "chainer" not in sys.modules
import chainer.functions as F, numpy
x = numpy.ones((1, 1, 2, 2), numpy.float32)
print(F.resize_images(x, (3, 3)).shape)
'''
    out = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '(1, 1, 3, 3)'


@pytest.mark.parametrize('installed, messages', [
    ({'cupy': '7.8.0'}, []),
    ({'cupy': '13.6.0'}, ['CuPy (cupy) version 13.6.0 may not be compatible']),
    ({'cupy': '7.8.0', 'cupy-cuda102': '7.8.0'},
     ['Multiple installations of CuPy have been detected: cupy-cuda102, cupy']),
    ({'ideep4py': '2.0.0.post3'}, []),
    ({'ideep4py': '2.1.0'}, ['iDeep (ideep4py) version 2.1.0 may not be compatible']),
    ({}, []),
])
def test_stand_in_warns_as_chainer_does(installed, messages, monkeypatch):
    monkeypatch.setenv('CHAINER_WARN_VERSION_MISMATCH', '1')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        _compat.check_optional_dependencies(installed)
    got = [str(w.message) for w in caught]
    assert len(got) == len(messages), got
    for text, message in zip(got, messages):
        assert text.startswith(message)


def test_stand_in_skips_versions_when_asked(monkeypatch):
    monkeypatch.setenv('CHAINER_WARN_VERSION_MISMATCH', '0')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        _compat.check_optional_dependencies({'cupy': '13.6.0'})
    assert caught == []


def test_numba_kernels_available():
    """numba is a dependency: kr.functions must get it on every supported Python."""
    import kr.functions
    assert kr.functions.numba is not None
    assert kr.functions._use_numba(np.zeros(1, np.float32))


def test_onnx_chainer_available_with_the_installed_onnx():
    """onnx_chainer imports onnx.mapping (removed in onnx 1.19): with onnx installed it must
    be usable, not silently unavailable."""
    if importlib.util.find_spec('onnx') is None:
        pytest.skip('the onnx extra is not installed')
    import onnx_chainer  # noqa: F401
    assert sys.modules['onnx_chainer.export']._available


def test_stand_in_only_for_the_check_s_own_imports():
    import types
    module = types.ModuleType('chainer._environment_check')
    with pytest.raises(ImportError, match='no module scipy'):
        _compat.use_stand_in(module, ModuleNotFoundError('no module scipy', name='scipy'))
    assert not hasattr(module, 'check')
    for name in ('numpy.distutils', 'pkg_resources', 'distutils.msvccompiler'):
        _compat.use_stand_in(module, ModuleNotFoundError('gone', name=name))
        assert module.check is _compat.check_optional_dependencies
        assert module.stand_in_reason == 'ModuleNotFoundError: gone'
    with pytest.raises(ImportError):
        _compat.use_stand_in(module, ModuleNotFoundError('x', name='numpy.distutilsx'))
