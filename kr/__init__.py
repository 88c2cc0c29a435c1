"""kr: kuzushiji recognition with a CenterNet detector and a MobileNetV3 classifier."""

__version__ = '0.1.0'
