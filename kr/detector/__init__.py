"""Character detection: the CenterNet model, NMS and test-time augmentation."""

from kr.detector.centernet import Res18UnetCenterNet  # NOQA
from kr.detector.centernet import SCORE_THRESHOLD  # NOQA
from kr.detector.centernet import SUBMISSION_SCORE_THRESHOLD  # NOQA
from kr.detector.nms import non_maximum_suppression  # NOQA
from kr.detector.tta import AdaptiveScaleDetector  # NOQA
from kr.detector.tta import bbox_voting  # NOQA
from kr.detector.tta import MultiScaleDetector  # NOQA
from kr.detector.tta import ScaledDetector  # NOQA
