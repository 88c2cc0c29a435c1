from setuptools import find_packages
from setuptools import setup

# Python 3.11, 3.12 and 3.13. Chainer 7.8.1 (the last release) imports on 3.12, 3.13 and
# with NumPy 2 only through kr/_compat.py (imported by kr/__init__.py); see README.rst
# "Installing" for the measured combinations.
install_requires = [
    'chainer==7.8.1',
    # Chainer 7.8.1's sdist builds only with setuptools<70 (and --no-build-isolation), and on
    # 3.11 it imports numpy.distutils and pkg_resources, which fail with setuptools>=70 (a
    # later install of torch, for the benchmarks, would otherwise upgrade it).
    'setuptools<70',
    # NumPy 1.26 where it has wheels (3.11, 3.12): the CuPy that still ships cuDNN for Chainer
    # (13.6, the gpu extra) needs NumPy<2, and it is what the README's figures were measured
    # with. NumPy 1.26 has no wheels for 3.13, so NumPy 2 there (kr/_compat.py makes Chainer
    # import with it; kr's tests also pass with NumPy 2 on 3.12).
    'numpy>=1.26,<2; python_version<"3.13"',
    'numpy>=2,<3; python_version>="3.13"',
    'pandas>=2.0,<3',
    'pillow>=9.0',
    'opencv-python-headless>=4.8,<5',
    'albumentations>=2.0,<3',
    'matplotlib>=3.7',
    'japanize-matplotlib>=1.1.3',
    'tqdm>=4.60',
    # the CPU depthwise-convolution and batch-norm kernels of kr.functions (measured 2-3.5x
    # faster than NumPy; kr.functions falls back to NumPy without it)
    # (0.59 is the first with Python 3.12 wheels, 0.61 the first with 3.13 wheels and NumPy 2.1)
    'numba>=0.59; python_version<"3.13"',
    'numba>=0.61; python_version>="3.13"',
]

extras_require = {
    # CuPy 13.6 is the last CuPy with cuDNN and needs NumPy<2 (so Python 3.11/3.12); CuPy 14
    # needs NumPy 2 and has no cuDNN: on 3.13 Chainer's convolutions run without it.
    # Neither is verified here (no GPU).
    'gpu': ['cupy-cuda12x==13.6.0; python_version<"3.13"',
            'nvidia-cudnn-cu12==8.9.7.29; python_version<"3.13"',
            'cupy-cuda12x>=14,<15; python_version>="3.13"'],
    # onnx_chainer (shipped in the chainer package) imports onnx.mapping, which onnx 1.19
    # removed; 1.18 is the first onnx with Python 3.13 wheels, and its models (IR version 11)
    # need onnxruntime>=1.23 (1.20-1.22 refuse them: "max supported IR version: 10"; 1.32
    # passes kr's tests). onnx 1.16 / onnxruntime 1.19 stay where they have wheels. The int8
    # detector (kr.onnx.quantize) runs onnxruntime.quantization, which with onnx 1.18 imports
    # ml_dtypes (not a dependency of either).
    'onnx': ['onnx>=1.16,<1.17; python_version<"3.13"',
             'onnxruntime>=1.19,<1.20; python_version<"3.13"',
             'onnx>=1.18,<1.19; python_version>="3.13"',
             'onnxruntime>=1.23,<1.33; python_version>="3.13"',
             'ml_dtypes>=0.4; python_version>="3.13"'],
    'dist': ['mpi4py>=3.1'],
    # chainer.testing.get_trainer_with_mock_updater imports the 'mock' backport.
    'test': ['pytest>=7.0', 'mock>=4.0'],
}

setup(
    name='kr',
    version='0.1.0',
    description='Kuzushiji recognition: CenterNet character detection and MobileNetV3 '
                'classification in Chainer (a rebuild of the 8th-place Kaggle solution)',
    long_description=open('README.rst', encoding='utf-8').read(),
    long_description_content_type='text/x-rst',
    license='MIT',
    packages=find_packages(include=['kr', 'kr.*']),
    python_requires='>=3.11,<3.14',
    install_requires=install_requires,
    extras_require=extras_require,
    # the kr command (kr/__main__.py; also python -m kr)
    entry_points={'console_scripts': ['kr = kr.__main__:main']},
)
