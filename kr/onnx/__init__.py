"""ONNX export of the detector and the classifier, and an ONNX Runtime inference backend.

Needs the ``onnx`` extra (``pip install -e ".[onnx]"``: onnx 1.16, onnxruntime 1.19); the
modules import them only when called.
"""

from kr.onnx.export import export_classifier  # NOQA
from kr.onnx.export import export_detector  # NOQA
from kr.onnx.export import export_models  # NOQA
from kr.onnx.runtime import load_onnx_models  # NOQA
from kr.onnx.runtime import OnnxClassifier  # NOQA
from kr.onnx.runtime import OnnxDetector  # NOQA
