"""The ``kr`` command (top floor, beside :mod:`kr.cli`): page images to text in reading order.

::

    kr recognize page.jpg book/ --model results/demo/model --out text/
    kr make-model-folder DETECTOR.npz CLASSIFIER.npz --out model/ [--onnx]

Also ``python -m kr``. The library side is :mod:`kr.reading` and :mod:`kr.model_folder`.
"""

import argparse
import logging
import sys

from kr.cli import communicator_args
from kr.cli import device_args
from kr.cli import first_pass_args
from kr.cli import nested_args
from kr.cli import setup_logging
from kr.detector.nms import NESTED_OVERLAP

logger = logging.getLogger('kr')

#: Exit status when some images could not be read (the others were written).
EXIT_UNREADABLE = 1
#: Exit status of a usage or input error (argparse's own).
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Kuzushiji recognition: page images to text in reading order.

  kr make-model-folder DETECTOR.npz CLASSIFIER.npz --out model/
  kr recognize page.jpg book/ --model model/ --out text/

Run "kr COMMAND --help" for the options of a command.
"""

RECOGNIZE_DESCRIPTION = """\
Recognise page images and write, per page, its text in reading order: characters top to
bottom, columns right to left, blocks by a recursive XY-cut, the right page of a spread
first, small interlinear ruby kept apart from the main text.

Files under --out, for an image NAME.jpg (a folder's tree is mirrored):
  NAME.txt       the main text, one column per line (an empty line between blocks)
  NAME.json      image name and size; blocks -> columns -> characters (unicode, char,
                 bbox [x_min, y_min, x_max, y_max] in pixels, centre, scores, ruby, order)
  NAME.tei.xml   TEI P5: a facsimile zone per block, column and character, and the text
                 with an <lb/> per column, ruby as <ruby><rb/><rt/></ruby>
  NAME.png       the page with the boxes, the characters and the reading path

Each page's files are written whole or not at all; a page whose files all exist is
skipped (unless --overwrite); an unreadable image is named and skipped, the others go on,
and the command then exits with status 1.
"""

RECOGNIZE_EPILOG = """\
example:
  make demo        # leaves a model folder in results/demo/model
  kr recognize data/kuzushiji-recognition-synthetic/test_images --model results/demo/model \\
      --out results/demo/reading --backend onnxruntime
"""


def _formats(value):
    from kr.reading.pages import parse_formats
    try:
        return parse_formats(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``kr`` and its subcommands."""
    from kr.reading.pages import DEFAULT_FORMATS
    from kr.reading.pages import FORMATS
    parser = argparse.ArgumentParser(
        prog='kr', description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version',
                        version='%(prog)s ' + __import__('kr').__version__)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', title='commands')

    rec = sub.add_parser(
        'recognize', parents=[device_args(), communicator_args()],
        help='page images (files or folders) -> TXT, JSON, TEI and PNG per page',
        description=RECOGNIZE_DESCRIPTION, epilog=RECOGNIZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument('inputs', nargs='+', metavar='INPUT',
                     help='image files (JPEG, PNG, TIFF, ...; any colour mode) or folders '
                          '(walked, sorted)')
    rec.add_argument('--model', required=True, metavar='DIR',
                     help='model folder (kr make-model-folder; make demo leaves one in '
                          'results/demo/model)')
    rec.add_argument('--out', required=True, metavar='DIR', help='output folder')
    rec.add_argument('--format', dest='formats', type=_formats,
                     default=DEFAULT_FORMATS, metavar='LIST',
                     help='comma-separated, from {} (default: {})'.format(
                         ','.join(FORMATS), ','.join(DEFAULT_FORMATS)))
    rec.add_argument('--backend', choices=('chainer', 'onnxruntime'), default='chainer',
                     help='run the models with Chainer, or with ONNX Runtime (CPU, several '
                          'times faster; needs the onnx extra) (default: %(default)s)')
    rec.add_argument('--ruby', choices=('omit', 'inline'), default='omit',
                     help='ruby in the TXT: left out, or inline after the characters it '
                          'glosses as base《ruby》 (default: %(default)s)')
    rec.add_argument('--detection-threshold', type=float, default=None,
                     help="detector probability threshold (default: the model folder's)")
    rec.add_argument('--class-threshold', type=float, default=None,
                     help="classifier probability threshold (default: the model folder's)")
    rec.add_argument('--no-tta', dest='tta', action='store_false', default=None,
                     help='one detection pass instead of adaptive-scale test-time augmentation')
    first_pass_args(rec, "(default: the model folder's; else the detector's standard side)")
    nested_args(rec, "(default: the model folder's)")
    rec.add_argument('--classify-tta', action='store_true', default=None,
                     help='average the classifier over crops of five margins (default: the '
                          "model folder's setting)")
    rec.add_argument('--overwrite', action='store_true',
                     help='recognise pages whose files already exist again')
    rec.set_defaults(func=recognize)

    mk = sub.add_parser(
        'make-model-folder', help='two training runs -> one self-contained model folder',
        description='Copy a detector run (script 03) and a classifier run (script 04 or 06) '
                    'with their args.json and class table into one folder for kr recognize, '
                    'with the thresholds to use (and the ONNX export with --onnx).',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mk.add_argument('detector', metavar='DETECTOR.npz',
                    help="detector weights, with the run's args.json beside them")
    mk.add_argument('classifier', metavar='CLASSIFIER.npz',
                    help="classifier weights, with the run's args.json and class table beside")
    mk.add_argument('--out', required=True, metavar='DIR', help='the model folder to create')
    mk.add_argument('--onnx', action='store_true',
                    help='also export both models to ONNX (needs the onnx extra)')
    mk.add_argument('--data-dir', default=None,
                    help="data folder whose class table must match the classifier's (or, for "
                         'runs without one, gives it)')
    mk.add_argument('--detection-threshold', type=float, default=None,
                    help="detector probability threshold (default: the family's submission "
                         'threshold; CenterNet: 0.57)')
    mk.add_argument('--class-threshold', type=float, default=None,
                    help='classifier probability threshold (default: 0.5)')
    mk.add_argument('--no-tta', dest='tta', action='store_false', default=None,
                    help='record one detection pass instead of adaptive-scale TTA (default: '
                         'the detector family\'s choice: TTA for CenterNet)')
    first_pass_args(mk, "(recorded in the folder; default: the detector's standard side, "
                        "as the original)")
    nested_args(mk, '(recorded in the folder; default: %(default)s)', NESTED_OVERLAP)
    mk.add_argument('--classify-tta', action='store_true',
                    help='recorded in the folder: kr recognize averages the classifier over '
                         "crops of five margins instead of the original's one crop")
    mk.add_argument('--int8', action='store_true',
                    help='with --onnx: also quantise the detector and the classifier to '
                         'int8, calibrated on training pages of --data-dir and crops of their '
                         'characters; kr recognize --backend onnxruntime then runs them')
    mk.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    mk.set_defaults(func=make_model_folder)
    return parser


def recognize(args) -> int:
    """``kr recognize``: returns the exit status."""
    from kr.cli import communicator
    from kr.model_folder import load_model_folder
    from kr.reading.pages import recognize_pages
    from kr.training.distributed import rank_device
    comm = communicator(args)
    try:
        recognizer = load_model_folder(
            args.model, backend=args.backend, device=None if args.device in (None, '-1') else
            rank_device(args.device, comm), detection_threshold=args.detection_threshold,
            class_threshold=args.class_threshold, tta=args.tta,
            first_min_side=args.first_min_side, nested_overlap=args.nested_overlap,
            classify_tta=args.classify_tta)
        result = recognize_pages(recognizer, args.inputs, args.out, formats=args.formats,
                                 overwrite=args.overwrite, ruby=args.ruby, comm=comm)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError) as e:
        if comm is None or comm.size == 1:
            raise
        from kr.cli import fail
        fail(e, comm)  # stops every rank: none waits for this one
    if comm is not None and comm.rank != 0:
        return 0
    print('{} page(s) written, {} already done, {} unreadable: {}'.format(
        len(result.done), len(result.skipped), len(result.failed), args.out))
    if result.failed:
        print('unreadable images (skipped):', file=sys.stderr)
        for path, reason in result.failed:
            print('  {}: {}'.format(path, reason), file=sys.stderr)
        return EXIT_UNREADABLE
    return 0


def make_model_folder(args) -> int:
    """``kr make-model-folder``: returns the exit status."""
    from kr.inference import CLASS_SCORE_THRESHOLD
    from kr.model_folder import DEFAULT_DETECTION_THRESHOLD
    from kr.model_folder import make_model_folder as make
    record = make(args.detector, args.classifier, args.out, onnx=args.onnx,
                  data_dir=args.data_dir,
                  detection_threshold=(DEFAULT_DETECTION_THRESHOLD
                                       if args.detection_threshold is None
                                       else args.detection_threshold),
                  class_threshold=(CLASS_SCORE_THRESHOLD if args.class_threshold is None
                                   else args.class_threshold),
                  tta=args.tta, first_min_side=args.first_min_side,
                  nested_overlap=args.nested_overlap, classify_tta=args.classify_tta,
                  int8=args.int8,
                  overwrite=args.overwrite)
    print('model folder {}: {} detector, {} classes, detection threshold {}, class threshold '
          '{}{}'.format(args.out, record['detector_family'], record['classes'],
                        record['detection_threshold'], record['class_threshold'],
                        ', ONNX files' if record['onnx'] else ''))
    return 0


def main(argv=None) -> int:
    """Entry point of the ``kr`` console script and of ``python -m kr``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    setup_logging()
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError) as e:
        print('kr {}: error: {}'.format(args.command, e), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print('kr {}: interrupted; the pages written so far are complete, run the same '
              'command again to go on'.format(args.command), file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == '__main__':
    sys.exit(main())
