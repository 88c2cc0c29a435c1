"""kr: kuzushiji recognition with a CenterNet detector and a MobileNetV3 classifier."""

# Before any kr module imports Chainer: Chainer 7.8.1 on Python 3.12/3.13 and NumPy 2.
from kr import _compat

_compat.apply()

__version__ = '0.1.0'
