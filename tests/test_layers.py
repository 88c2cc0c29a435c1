"""The floors of the package: the library never imports its command-line module."""
import subprocess
import sys


def test_the_library_never_imports_kr_cli():
    code = ('import sys, kr.inference, kr.pseudo_labels, kr.submission, kr.synthetic, '
            'kr.datasets, kr.detector, kr.classifier, kr.training, kr.onnx, kr.evaluation, '
            'kr.visualization, kr.reading, kr.model_folder; '
            'assert "kr.cli" not in sys.modules, "kr.cli was imported"')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_loading_a_model_does_not_import_the_training_floor():
    code = ('import sys, kr.detector, kr.classifier.registry; '
            'assert "kr.detector.centernet.training" not in sys.modules')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
