"""Evaluation: the competition's F1 metric (:mod:`kr.evaluation.f1`), detection scores with
the labels ignored (:mod:`kr.evaluation.detection`) and VOC mAP
(:mod:`kr.evaluation.detection_map`)."""

from kr.evaluation.f1 import F1Result  # NOQA
from kr.evaluation.f1 import PageScore  # NOQA
from kr.evaluation.f1 import f1_from_counts  # NOQA
from kr.evaluation.f1 import kuzushiji_f1  # NOQA
from kr.evaluation.f1 import parse_solution_labels  # NOQA
from kr.evaluation.f1 import parse_submission_labels  # NOQA
from kr.evaluation.f1 import read_label_table  # NOQA
from kr.evaluation.f1 import score_page  # NOQA
from kr.evaluation.detection_map import average_precision  # NOQA
from kr.evaluation.detection_map import DetectionMapEvaluator  # NOQA
from kr.evaluation.detection_map import eval_detection_voc  # NOQA
from kr.evaluation.detection import detection_f1  # NOQA
from kr.evaluation.detection import score_detections  # NOQA
from kr.evaluation.detection import iou_counts  # NOQA
from kr.evaluation.detection import threshold_sweep  # NOQA
