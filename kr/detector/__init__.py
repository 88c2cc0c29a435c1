"""Character detection: the detector families, NMS and test-time augmentation."""

from kr.detector.centernet import Res18UnetCenterNet  # NOQA
from kr.detector.nms import non_maximum_suppression  # NOQA
from kr.detector.registry import build_detector  # NOQA
from kr.detector.registry import DETECTORS  # NOQA
from kr.detector.registry import detector_family  # NOQA
from kr.detector.registry import DetectorFamily  # NOQA
from kr.detector.registry import load_detector  # NOQA
from kr.detector.tta import AdaptiveScaleDetector  # NOQA
from kr.detector.tta import bbox_voting  # NOQA
from kr.detector.tta import MultiScaleDetector  # NOQA
from kr.detector.tta import ScaledDetector  # NOQA
