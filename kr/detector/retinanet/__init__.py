"""RetinaNet character detector on a ResNet-FPN (SPEC section 11: the second seed's).

The training side (train chain, datasets, ``train_detector``, presets) is
:mod:`kr.detector.retinanet.training`, imported on its own: loading a model does not
import the training floor.
"""

from kr.detector.retinanet.anchors import level_anchor_shapes  # NOQA
from kr.detector.retinanet.anchors import level_anchor_sizes  # NOQA
from kr.detector.retinanet.anchors import pyramid_anchors  # NOQA
from kr.detector.retinanet.decode import decode  # NOQA
from kr.detector.retinanet.decode import flatten_level  # NOQA
from kr.detector.retinanet.loss import retinanet_loss  # NOQA
from kr.detector.retinanet.loss import sigmoid_focal_loss  # NOQA
from kr.detector.retinanet.model import RetinaNetDetection  # NOQA
from kr.detector.retinanet.model import RetinaNetResNet  # NOQA
from kr.detector.retinanet.model import SCORE_THRESHOLD  # NOQA
from kr.detector.retinanet.model import SUBMISSION_SCORE_THRESHOLD  # NOQA
from kr.detector.retinanet.targets import assign_targets  # NOQA
