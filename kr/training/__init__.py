from kr.training.extensions import extend_lr_drop  # NOQA
from kr.training.extensions import FailOnNonFinite  # NOQA
from kr.training.extensions import lr_drop  # NOQA
from kr.training.extensions import TrainingDiverged  # NOQA
from kr.training.trainer import extend_standard  # NOQA
from kr.training.optimizers import make_optimizer  # NOQA
from kr.training.optimizers import OPTIMIZERS  # NOQA
