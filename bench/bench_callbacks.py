#!/usr/bin/python3
"""What a Python host pays per step for crossing into the library and back: the ctypes
trampoline around the gradient callback, and the call into intdim_trainer_step.

A tiny DENSE projection (D = 16, d = 4) and a callback that only writes a constant
gradient (or nothing), so nearly all the time is the crossing itself. Three rows, medians
of interleaved repeats:

  run(n), callback returns at once   Trainer.run(n): the loop in C, one trampoline call per
                                     step, the callback doing nothing;
  run(n), callback fills grad        the same, the callback writing grad[:] = 1 (numpy);
  step() x n, callback fills grad    n calls of Trainer.step() from Python: one ctypes call
                                     in and one trampoline call out per step.

    INTDIM_LIBRARY=build/lib/libintdim.so.0 PYTHONPATH=python /usr/bin/python3 \\
        bench/bench_callbacks.py [--steps 20000] [--repeats 5]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import intdim  # noqa: E402


def trivial_grad(step, theta, grad):
    grad[:] = 1.0
    return 0.5


def empty_grad(step, theta, grad):
    return 0.5


def make_trainer(grad_fn):
    proj = intdim.Projection("dense", 16, 4, seed=1)
    theta = np.zeros(16, dtype=np.float32)
    return intdim.Trainer(proj, theta, grad_fn, lr=1e-6), proj, theta


def time_run(grad_fn, steps):
    t, _, _ = make_trainer(grad_fn)
    start = time.perf_counter()
    t.run(steps)
    return (time.perf_counter() - start) / steps


def time_steps(grad_fn, steps):
    t, _, _ = make_trainer(grad_fn)
    start = time.perf_counter()
    for _ in range(steps):
        t.step()
    return (time.perf_counter() - start) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rows = [("run(n), callback returns at once", lambda: time_run(empty_grad, args.steps)),
            ("run(n), callback fills grad", lambda: time_run(trivial_grad, args.steps)),
            ("step() x n, callback fills grad", lambda: time_steps(trivial_grad, args.steps))]
    results = {name: [] for name, _ in rows}
    for _ in range(args.repeats):  # interleaved, so a slow spell hits every row
        for name, fn in rows:
            results[name].append(fn())
    print(f"# {args.steps} steps, medians of {args.repeats} interleaved repeats; "
          f"DENSE D = 16, d = 4 (the projection's own work is negligible)")
    for name, _ in rows:
        print(f"  {name:36s} {statistics.median(results[name]) * 1e6:7.2f} us/step")


if __name__ == "__main__":
    main()
