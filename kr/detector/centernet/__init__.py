"""CenterNet character detector with a ResNet18 U-Net (SPEC section 3).

The training side (train chain, converter, datasets, ``train_detector``, presets) is
:mod:`kr.detector.centernet.training`, imported on its own: loading a model does not
import the training floor.
"""

from kr.detector.centernet.backbone import ResNet18Encoder  # NOQA
from kr.detector.centernet.decode import decode  # NOQA
from kr.detector.centernet.decode import split_output  # NOQA
from kr.detector.centernet.heatmap import gaussian_radius  # NOQA
from kr.detector.centernet.heatmap import generate_targets  # NOQA
from kr.detector.centernet.heatmap import HEATMAP_STRIDE  # NOQA
from kr.detector.centernet.loss import centernet_loss  # NOQA
from kr.detector.centernet.model import CenterNetDetection  # NOQA
from kr.detector.centernet.model import Res18UnetCenterNet  # NOQA
from kr.detector.centernet.model import SCORE_THRESHOLD  # NOQA
from kr.detector.centernet.model import SUBMISSION_SCORE_THRESHOLD  # NOQA
from kr.detector.centernet.transforms import CenterCropResize  # NOQA
from kr.detector.centernet.transforms import CenterNetTrainTransform  # NOQA
from kr.detector.centernet.transforms import ColorAugmentation  # NOQA
from kr.detector.centernet.transforms import IMAGE_MIN_SIDE  # NOQA
from kr.detector.centernet.transforms import RandomCropResize  # NOQA
