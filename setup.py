from setuptools import find_packages
from setuptools import setup

# Chainer 7.8.1 (the last release) does not import with NumPy 2, and the CuPy that still
# ships cuDNN for it is 13.x; see README.rst "Installing" for the measured combinations.
install_requires = [
    'chainer==7.8.1',
    # Chainer 7.8.1 imports numpy.distutils, which fails with setuptools>=70 (a later
    # install of torch, for the benchmarks, would otherwise upgrade it).
    'setuptools<70',
    'numpy>=1.26,<2',
    'pandas>=2.0,<3',
    'pillow>=9.0',
    'opencv-python-headless>=4.8,<5',
    'albumentations>=2.0,<3',
    'matplotlib>=3.7',
    'japanize-matplotlib>=1.1.3',
    'tqdm>=4.60',
    # the CPU depthwise-convolution and batch-norm kernels of kr.functions (measured 2-3.5x
    # faster than NumPy; kr.functions falls back to NumPy without it)
    'numba>=0.59',
]

extras_require = {
    'gpu': ['cupy-cuda12x==13.6.0', 'nvidia-cudnn-cu12==8.9.7.29'],
    'onnx': ['onnx>=1.16,<1.17', 'onnxruntime>=1.19,<1.20'],
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
    python_requires='>=3.11,<3.12',
    install_requires=install_requires,
    extras_require=extras_require,
    # the kr command (kr/__main__.py; also python -m kr)
    entry_points={'console_scripts': ['kr = kr.__main__:main']},
)
