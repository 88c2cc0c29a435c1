"""Chainer 7.8.1 on the Pythons and NumPys of a fresh machine (3.11 to 3.13, NumPy 1.26 or 2).

:func:`apply` runs from ``kr/__init__.py``, so before any ``kr`` module imports Chainer. It
is idempotent and changes only what is missing or broken in the installed versions, three
things, none of which alters what Chainer computes:

1. **chainer._environment_check.** ``import chainer`` runs this module, which imports
   ``numpy.distutils.system_info`` (gone with Python 3.12, which has no ``distutils``, and
   with NumPy 2) and ``pkg_resources`` (gone from setuptools 82), so on Python 3.12/3.13 or
   with NumPy 2 Chainer does not import at all. Upstream the module only warns: about
   Python 3.5.0, about Apple's Accelerate BLAS on macOS, and about CuPy / iDeep versions
   outside what Chainer was tested with. When Chainer imports it and one of those two imports
   fails (an ImportError from ``numpy.distutils``, ``distutils`` or ``pkg_resources``; any
   other error is raised as before), the module becomes a stand-in instead: its ``check()``
   keeps the version warnings (read with :mod:`importlib.metadata`, not ``pkg_resources``)
   and drops the other two (Python 3.5.0 cannot run kr, macOS is not supported by Chainer).
   Where they import (Python 3.11 with NumPy 1.26 and setuptools<70), Chainer's own module
   runs as is.
2. **numpy.sctypes**, removed in NumPy 2. ``chainer.functions.array.as_strided`` reads it
   when imported (``sctypes['int']``) and in its backward (``sctypes['float']``). Where it is
   missing it is set back to NumPy 1.26's value (the same lists of scalar types); NumPy 2
   itself never reads it, so adding the attribute changes nothing else.
3. **numpy.float** (an alias of the builtin ``float``, removed in NumPy 1.24), used by
   ``chainer.functions.array.resize_images.compute_indices_and_weights``, so that
   ``F.resize_images`` fails with NumPy 1.26 and 2 (kr itself does not call it). NumPy is not
   patched: that one function is replaced by a copy of itself whose globals see a ``numpy``
   that also has ``float`` (the builtin, what the alias was).

1 and 3 happen when Chainer imports those modules (an import hook on ``sys.meta_path`` that
knows only these two names and wraps their loader), so ``import kr`` itself imports neither
Chainer nor ``numpy.distutils``; 3 happens at once if Chainer is already imported.
"""

import builtins
import importlib.abc
import importlib.metadata
import os
import sys
import types
import warnings

import numpy

_ENV_CHECK = 'chainer._environment_check'
_RESIZE_IMAGES = 'chainer.functions.array.resize_images'
#: numpy.sctypes of NumPy 1.26 (x86-64 Linux), restored where NumPy 2 removed it.
_SCTYPES = {
    'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
    'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
    'float': [numpy.float16, numpy.float32, numpy.float64, numpy.longdouble],
    'complex': [numpy.complex64, numpy.complex128, numpy.clongdouble],
    'others': [bool, object, bytes, str, numpy.void],
}


def apply():
    """Make Chainer 7.8.1 import and run here (see the module docstring); safe to call again."""
    if not hasattr(numpy, 'sctypes'):
        numpy.sctypes = _SCTYPES
    module = sys.modules.get(_RESIZE_IMAGES)
    if module is not None:
        patch_resize_images(module)
    if 'chainer' not in sys.modules \
            and not any(isinstance(f, _ChainerImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _ChainerImportHook())


#: The modules whose absence makes chainer._environment_check a stand-in.
_ENV_CHECK_IMPORTS = ('numpy.distutils', 'distutils', 'pkg_resources')


def use_stand_in(module, error):
    """Turn the partly run ``chainer._environment_check`` into the stand-in (see above)."""
    name = getattr(error, 'name', None) or ''
    if not any(name == m or name.startswith(m + '.') for m in _ENV_CHECK_IMPORTS):
        raise error
    module.check = check_optional_dependencies
    module.stand_in_reason = '{}: {}'.format(type(error).__name__, error)


def _installed_versions():
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata['Name']
        if name:
            versions.setdefault(name.lower().replace('_', '-'), dist.version)
    return versions


def check_optional_dependencies(installed=None):
    """Chainer's check of its optional dependencies, without ``pkg_resources``.

    For each optional dependency of Chainer (CuPy, iDeep), warn when an installed package of
    it is outside Chainer's tested versions (unless ``CHAINER_WARN_VERSION_MISMATCH`` is not
    ``1``), and when more than one of its packages is installed. ``installed`` maps package
    names to versions (default: the installed distributions).
    """
    import chainer._version
    try:
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion
    except ImportError:  # pragma: no cover - pip, pytest and matplotlib all bring packaging
        return
    if installed is None:
        installed = _installed_versions()
    check_versions = os.environ.get('CHAINER_WARN_VERSION_MISMATCH', '1') == '1'
    for dep in chainer._version._optional_dependencies:
        found = [pkg for pkg in dep['packages'] if pkg in installed]
        for pkg in found:
            version = installed[pkg]
            try:
                compatible = SpecifierSet(dep['specifier']).contains(version, prereleases=True)
            except InvalidVersion:
                compatible = False
            if check_versions and not compatible:
                warnings.warn(
                    '{} ({}) version {} may not be compatible with this version of Chainer '
                    '(tested: {}{}); see {}'.format(dep['name'], pkg, version, pkg,
                                                    dep['specifier'], dep['help']))
        if len(found) > 1:
            warnings.warn('Multiple installations of {} have been detected: {}; uninstall all '
                          'but one'.format(dep['name'], ', '.join(found)))


class _NumpyWithFloat:
    """``numpy`` as seen by one patched function: NumPy plus the removed ``float`` alias."""

    float = builtins.float

    def __getattr__(self, name):
        return getattr(numpy, name)


def patch_resize_images(module):
    """Give ``module.compute_indices_and_weights`` a ``numpy.float`` (see the docstring)."""
    func = getattr(module, 'compute_indices_and_weights', None)
    if func is None or getattr(func, '_kr_compat', False) or hasattr(numpy, 'float') \
            or 'float' not in func.__code__.co_names:
        return
    namespace = dict(func.__globals__)
    namespace['numpy'] = _NumpyWithFloat()
    patched = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__,
                                 func.__closure__)
    patched.__kwdefaults__ = func.__kwdefaults__
    patched.__doc__ = func.__doc__
    patched.__qualname__ = func.__qualname__
    patched.__module__ = func.__module__
    patched.__wrapped__ = func
    patched._kr_compat = True
    module.compute_indices_and_weights = patched


class _ChainerImportHook(importlib.abc.MetaPathFinder):
    """Wraps the loaders of the two Chainer modules above; every other import passes by."""

    def find_spec(self, fullname, path, target=None):
        if fullname == _ENV_CHECK:
            after, on_import_error = None, use_stand_in
        elif fullname == _RESIZE_IMAGES:
            after, on_import_error = patch_resize_images, None
        else:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
                    spec.loader = _WrappingLoader(spec.loader, after, on_import_error)
                return spec
        return None


class _WrappingLoader(importlib.abc.Loader):
    """A module's own loader, then ``after(module)``; or ``on_import_error(module, error)``
    where running the module raises ImportError."""

    def __init__(self, loader, after, on_import_error):
        self._loader = loader
        self._after = after
        self._on_import_error = on_import_error

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        try:
            self._loader.exec_module(module)
        except ImportError as error:
            if self._on_import_error is None:
                raise
            self._on_import_error(module, error)
        else:
            if self._after is not None:
                self._after(module)

    def __getattr__(self, name):  # get_source, get_filename, ... of the real loader
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self._loader, name)
