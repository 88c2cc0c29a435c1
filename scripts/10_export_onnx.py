#!/usr/bin/env python
"""Export the detector and the classifier to ONNX for the ONNX Runtime backend.

    python scripts/10_export_onnx.py DETECTOR.npz CLASSIFIER.npz --out DIR [--opset 11] \
        [--int8 --data-dir DATA]

Each model is rebuilt from the args.json of its training run (beside the weights). Writes
<out>/detector.onnx (any page size: height and width are dynamic), <out>/classifier.onnx
(dynamic batch, softmax output), <out>/onnx_models.json (what the runtime needs: graph
names, thresholds, classes, widths, input size) and <out>/args.json. Load them with
``kr.onnx.load_onnx_models(DIR)``. With ``--int8`` also <out>/detector.int8.onnx and
<out>/classifier.int8.onnx, the models quantised to int8 with training pages of
``--data-dir`` and crops of their characters (kr.onnx.quantize), which the loader then
runs. Needs the onnx extra: pip install -e ".[onnx]".
"""

import argparse
import logging
import sys

from kr import cli
from kr.classifier import load_classifier
from kr.detector import load_detector

logger = logging.getLogger('10_export_onnx')


def parse_args(argv=None):
    from kr.onnx.export import OPSET_VERSION
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                parents=[cli.model_args(), cli.output_args()])
    p.add_argument('--opset', type=int, default=OPSET_VERSION,
                   help='ONNX opset (default: %(default)s, the newest onnx_chainer supports)')
    p.add_argument('--int8', action='store_true',
                   help='also quantise the detector and the classifier to int8 '
                        '(calibrated on --data-dir\'s training pages and crops of their '
                        'characters) and run those')
    p.add_argument('--data-dir', default=None,
                   help='data folder whose training pages calibrate --int8')
    args = p.parse_args(argv)
    if args.int8 and not args.data_dir:
        p.error('--int8 needs --data-dir (its training pages calibrate the quantisation)')
    return args


def main(argv=None):
    args = parse_args(argv)
    record = cli.setup_run(args)
    try:
        from kr.onnx import export_models
        calibration = None
        if args.int8:
            from kr.onnx.quantize import calibration_pages
            calibration = calibration_pages(args.data_dir, boxes=True)
        meta = export_models(load_detector(args.detector), load_classifier(args.classifier),
                             out_dir=args.out, opset_version=args.opset, run_record=record,
                             int8_calibration=calibration)
    except ImportError as e:
        sys.exit('error: {} (install the onnx extra: pip install -e ".[onnx]")'.format(e))
    except (FileNotFoundError, ValueError) as e:
        sys.exit('error: {}'.format(e))
    logger.info('exported the detector (width %s) and the %s classifier (%d classes) to %s',
                meta['detector']['width'], meta['classifier']['model'],
                meta['classifier']['n_classes'], args.out)


if __name__ == '__main__':
    main()
