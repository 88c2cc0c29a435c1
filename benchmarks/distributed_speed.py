#!/usr/bin/env python
"""Data-parallel training speed with ChainerMN: samples per second on 1 and 2 ranks.

    python benchmarks/distributed_speed.py [--steps 6] [--ranks 1 2]

Launches itself under ``mpiexec -n N`` for each N and each model (the CenterNet detector at
width 0.25 on 192 px crops, batch 4 per rank; the ResNet18 classifier at width 0.25 on 32 px
crops, batch 64 per rank; random inputs), times training steps after two warm-up steps
(the first of which only broadcasts the weights), and prints per model and rank count the
samples per second (all ranks together), the speed-up over one rank, and the share of a
step spent averaging the gradients (``multi_node_mean_grad``). Each rank runs one thread.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODELS = {'detector': dict(batch=4, size=192), 'classifier': dict(batch=64, size=32)}


def _rank_main(model_name, steps):
    sys.path.insert(0, REPO)
    import kr  # NOQA: before chainer
    import chainer
    import chainer.links as L
    import numpy as np
    from kr.training.distributed import create_communicator
    comm = create_communicator('naive')
    spec = MODELS[model_name]
    rng = np.random.RandomState(comm.rank)
    if model_name == 'detector':
        from kr.detector import build_detector
        from kr.detector.centernet.training import CenterNetTrainChain
        chain = CenterNetTrainChain(build_detector(width=0.25))
        s, c = spec['size'], spec['size'] // 4
        batch = (rng.randn(spec['batch'], 3, s, s).astype(np.float32),
                 rng.uniform(0, 1, (spec['batch'], 1, c, c)).astype(np.float32),
                 rng.uniform(0, 8, (spec['batch'], 2, c, c)).astype(np.float32),
                 rng.uniform(0, 1, (spec['batch'], 2, c, c)).astype(np.float32),
                 (rng.uniform(0, 1, (spec['batch'], c, c)) > 0.95).astype(np.float32))
    else:
        from kr.classifier import build_classifier
        chain = L.Classifier(build_classifier('resnet18', 200, width=0.25, input_size=32))
        batch = (rng.randn(spec['batch'], 3, spec['size'], spec['size']).astype(np.float32),
                 rng.randint(0, 200, spec['batch']).astype(np.int32))
    import chainermn
    opt = chainer.optimizers.NesterovAG(lr=0.01)
    opt.setup(chain)
    opt = chainermn.create_multi_node_optimizer(opt, comm)
    spent = [0.0]
    mean_grad = comm.multi_node_mean_grad

    def timed(*args, **kwargs):
        t = time.perf_counter()
        mean_grad(*args, **kwargs)
        spent[0] += time.perf_counter() - t
    comm.multi_node_mean_grad = timed
    for _ in range(2):
        opt.update(chain, *batch)
    comm.mpi_comm.Barrier()
    spent[0] = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        opt.update(chain, *batch)
    comm.mpi_comm.Barrier()
    elapsed = time.perf_counter() - start
    if comm.rank == 0:
        print('RESULT ' + json.dumps({'samples_per_s': steps * spec['batch'] * comm.size / elapsed,
                                      'comm_share': spent[0] / elapsed}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--steps', type=int, default=6)
    p.add_argument('--ranks', type=int, nargs='+', default=[1, 2])
    p.add_argument('--rank-main', nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rank_main:
        return _rank_main(args.rank_main[0], int(args.rank_main[1]))
    if shutil.which('mpiexec') is None:
        sys.exit('error: mpiexec not found: install OpenMPI (make install-mpi)')
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', NUMBA_NUM_THREADS='1',
               PYTHONPATH=REPO)
    print('{:<11} {:>5} {:>12} {:>9} {:>12}'.format('model', 'ranks', 'samples/s', 'speed-up',
                                                   'comm share'))
    for name in MODELS:
        base = None
        for n in args.ranks:
            cmd = ['mpiexec', '--oversubscribe', '-n', str(n)]
            if os.geteuid() == 0:
                cmd.insert(1, '--allow-run-as-root')
            out = subprocess.run(cmd + [sys.executable, os.path.abspath(__file__), '--rank-main',
                                        name, str(args.steps)], env=env, capture_output=True,
                                 text=True)
            line = [l for l in out.stdout.splitlines() if l.startswith('RESULT ')]
            if out.returncode or not line:
                sys.exit('error: {} on {} ranks failed:\n{}'.format(name, n, out.stderr[-2000:]))
            r = json.loads(line[0][len('RESULT '):])
            base = base or r['samples_per_s']
            print('{:<11} {:>5} {:>12.1f} {:>8.2f}x {:>11.1%}'.format(
                name, n, r['samples_per_s'], r['samples_per_s'] / base, r['comm_share']))


if __name__ == '__main__':
    main()
