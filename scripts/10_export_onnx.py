#!/usr/bin/env python
"""Export the detector and the classifier to ONNX for the ONNX Runtime backend.

    python scripts/10_export_onnx.py DETECTOR.npz CLASSIFIER.npz --out DIR [--opset 11]

Each model is rebuilt from the args.json of its training run (beside the weights). Writes
<out>/detector.onnx (any page size: height and width are dynamic), <out>/classifier.onnx
(dynamic batch, softmax output), <out>/onnx_models.json (what the runtime needs: graph
names, thresholds, classes, widths, input size) and <out>/args.json. Load them with
``kr.onnx.load_onnx_models(DIR)``. Needs the onnx extra: pip install -e ".[onnx]".
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
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    record = cli.setup_run(args)
    try:
        from kr.onnx import export_models
        meta = export_models(load_detector(args.detector), load_classifier(args.classifier),
                             out_dir=args.out, opset_version=args.opset, run_record=record)
    except ImportError as e:
        sys.exit('error: {} (install the onnx extra: pip install -e ".[onnx]")'.format(e))
    except (FileNotFoundError, ValueError) as e:
        sys.exit('error: {}'.format(e))
    logger.info('exported the detector (width %s) and the %s classifier (%d classes) to %s',
                meta['detector']['width'], meta['classifier']['model'],
                meta['classifier']['n_classes'], args.out)


if __name__ == '__main__':
    main()
