"""Faster R-CNN character detector with a ResNet-FPN backbone (SPEC section 11).

The training side (train chain, datasets, ``train_detector``, presets) is
:mod:`kr.detector.faster_rcnn.training`, imported on its own: loading a model does not
import the training floor.
"""

from kr.detector.faster_rcnn.model import FasterRCNNDetection  # NOQA
from kr.detector.faster_rcnn.model import FasterRCNNFPNResNet  # NOQA
from kr.detector.faster_rcnn.model import SCORE_THRESHOLD  # NOQA
from kr.detector.faster_rcnn.model import SUBMISSION_SCORE_THRESHOLD  # NOQA
from kr.detector.faster_rcnn.roi_align import roi_align_2d  # NOQA
