#!/usr/bin/python3
"""d90 of a 784-200-200-10 MLP on Fashion-MNIST from PyTorch through libintdim, and the time
per training step of (libintdim's Fastfood via ctypes + torch forward/backward) against (the
PyTorch-only reference Fastfood + the same forward/backward), both measured in this run.

    INTDIM_LIBRARY=build/lib/libintdim.so.0 /usr/bin/python3 python/examples/fmnist_torch.py
    ... --speed-only            only the per-step timing (d = 1000)
    ... --no-speed              only the d90 search

The data are Debian's dataset-fashion-mnist IDX files, read with gzip + numpy, split as the
C example does: training pool = the first 50,000 training images, validation = the last
10,000 (it drives every choice). The baseline is the best full training (IDENTITY, same
trainer) over --full-lrs on validation; d90 = smallest d whose mean validation accuracy over
seeds (best subspace lr) is strictly above 0.9 x baseline. Defaults = the C example's
--quick protocol, so both can be compared with the same flags.
"""

import argparse
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import intdim  # noqa: E402
from intdim.torch_host import ReferenceFastfood, TorchHost, accuracy  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------
def read_idx(path):
    """An IDX file (gzip'd) as a uint8 array: 2 zero bytes, type 0x08 (unsigned byte), the
    number of dimensions, one big-endian uint32 per dimension, then the data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for dimensions {dims.tolist()}")
    return data.reshape(dims)


def load(split):
    images = read_idx(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


# ---------------------------------------------------------------------------------------
# Model and host
# ---------------------------------------------------------------------------------------
def make_model(seed):
    """784-200-200-10 with ReLU, Glorot-uniform weights and zero biases (theta0)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 200), torch.nn.ReLU(),
                                torch.nn.Linear(200, 200), torch.nn.ReLU(),
                                torch.nn.Linear(200, 10))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model


def make_batches(x, y, batch, seed):
    """Deterministic minibatch of step s (so a resumed trial sees the same data)."""
    n = x.shape[0]

    def batches(step):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, n, (batch,), generator=gen)
        return x[idx], y[idx]

    return batches


def make_host(args, pool, val, train_eval):
    model = make_model(args.init_seed)
    batches = make_batches(pool[0], pool[1], args.batch, args.init_seed)
    return TorchHost(model, torch.nn.functional.cross_entropy, batches,
                     eval_fn=lambda m: accuracy(m, *val),
                     train_eval_fn=lambda m: accuracy(m, *train_eval), groups=args.groups)


# ---------------------------------------------------------------------------------------
# d90 search
# ---------------------------------------------------------------------------------------
def measure_baseline(args, host):
    """Best full training (IDENTITY, same trainer) over the full-training lr grid, chosen on
    validation accuracy, as the C example does."""
    best = None
    for lr in args.full_lrs:
        t0 = time.time()
        with host.trainer(host.D, kind="identity", lr=lr) as t:
            t.run(args.steps)
            val = t.evaluate(host.metric_callback(host.eval_metric))
        print(f"  full training lr={lr:g}: val_acc={val:.4f} ({time.time() - t0:.0f}s)",
              flush=True)
        if best is None or val > best[1]:
            best = (lr, val)
    host.restore_theta0()
    return best


def run_search(args, host):
    started = time.time()
    print(f"D={host.D} steps={args.steps} batch={args.batch} pool={args.pool} val={args.val} "
          f"seeds={args.seeds} said={args.said}", flush=True)
    full_lr, baseline = measure_baseline(args, host)
    print(f"baseline (full training, lr {full_lr:g}) val accuracy: {baseline:.4f}")

    def progress(done, total, d, lr, metric, seconds_left):
        print(f"  trial {done}/{total}: d={d} lr={lr:g} val_acc={metric:.4f} "
              f"({time.time() - started:.0f}s, ~{seconds_left:.0f}s left)", flush=True)

    with host.search(ds=args.ds, lrs=args.lrs, steps=args.steps, seeds=args.seeds,
                     said=args.said, journal=args.journal, progress=progress,
                     baseline=baseline, base_seed=args.base_seed) as s:
        r = s.result()
        print(f"\n{'d':>7} {'best lr':>8} {'val mean':>9} {'spread':>8} {'seeds':>5}  pass")
        for p in s.points():
            print(f"{p.d:>7} {p.best_lr:>8g} {p.mean:>9.4f} {p.spread:>8.4f} {p.n_seeds:>5}  "
                  f"{'yes' if p.passed else 'no'}")
        if r.reached:
            print(f"d90 (val) = {r.d90}  (bootstrap 5%..95% over seeds: {r.d90_lo}..{r.d90_hi})")
        else:
            print("d90 not reached on this grid")
        print(f"search time {time.time() - started:.0f}s")
        return r


# ---------------------------------------------------------------------------------------
# Speed: library Fastfood + torch vs torch-only reference Fastfood, d = 1000
# ---------------------------------------------------------------------------------------
def interleaved_ms(fns, steps, warmup=3):
    """Median and min milliseconds of each fn(step), timed in interleaved rounds (one call
    of each per round) so that load changes on a shared machine hit all of them alike."""
    for i in range(warmup):
        for fn in fns:
            fn(i)
    times = [[] for _ in fns]
    for i in range(steps):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn(warmup + i)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return [(statistics.median(t), min(t)) for t in times]


def compare_speed(args, host):
    from torch.nn.utils.stateless import functional_call

    d, lr = args.speed_d, args.lrs[0]
    threads = torch.get_num_threads()
    print(f"\nper-step time, d={d}, D={host.D}, batch={args.batch}, torch threads={threads}, "
          f"library threads={threads}, {args.speed_steps} interleaved rounds (median, min):")
    host.restore_theta0()
    grad = np.zeros(host.D, np.float32)
    theta_d = np.random.default_rng(0).standard_normal(d).astype(np.float32)

    # PyTorch-only reference: theta_d -> Fastfood in torch -> functional_call -> autograd
    ff = ReferenceFastfood(host.D, d, seed=1)
    theta0 = torch.from_numpy(host.theta0.copy())
    shapes = [(name, p.shape, p.numel()) for name, p in zip(host.names, host.params)]
    theta_d_t = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([theta_d_t], lr=lr)

    def reference_step(step):
        x, y = host.batch(step)
        flat = theta0 + ff(theta_d_t)
        params, offset = {}, 0
        for name, shape, n in shapes:
            params[name] = flat[offset:offset + n].view(shape)
            offset += n
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(functional_call(host.module, params, (x,)), y)
        loss.backward()
        opt.step()

    def reference_ff_only(step):
        theta_d_t.grad = None
        ff(theta_d_t).sum().backward()

    # libintdim: write theta = theta0 + P(theta_d) in place, callback (forward/backward),
    # exact adjoint, Adam; plus torch's forward/backward alone at the same parameters.
    with host.trainer(d, kind="fastfood", seed=1, lr=lr,
                      proj_options={"threads": threads}) as t:
        proj = t.proj
        fns = [lambda s: host.grad_fn(s, host.theta, grad),
               lambda s: t.step(),
               lambda s: proj.apply(theta_d),
               lambda s: proj.vjp(grad),
               reference_step,
               reference_ff_only]
        fb, ours, apply_only, vjp_only, ref, ff_only = interleaved_ms(fns, args.speed_steps)
    host.restore_theta0()

    rows = [("forward+backward only (torch)", fb),
            ("libintdim Fastfood + torch fwd/bwd (step)", ours),
            ("  libintdim Fastfood apply alone", apply_only),
            ("  libintdim Fastfood adjoint alone", vjp_only),
            ("reference torch Fastfood + fwd/bwd (step)", ref),
            ("  reference Fastfood forward+backward alone", ff_only)]
    for name, (med, best) in rows:
        print(f"  {name:<44} {med:8.2f} ms  (min {best:.2f})")
    print(f"  per-step speed-up (median) {ref[0] / ours[0]:.1f}x, (min) {ref[1] / ours[1]:.1f}x; "
          f"projection overhead per step (median): libintdim {ours[0] - fb[0]:.2f} ms, "
          f"reference {ref[0] - fb[0]:.2f} ms")


def make_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Defaults: the C example's --quick protocol (preset_common and preset_quick in
    # examples/fashion_mnist/fmnist.c; python/tests/test_torch.py checks they agree).
    ap.add_argument("--ds", default="100,300,1000,3000", help="comma-separated d values")
    ap.add_argument("--lrs", default="3e-2,1e-1", help="Adam learning rates, subspace")
    ap.add_argument("--full-lrs", default="1e-3,3e-3", help="Adam learning rates, baseline")
    ap.add_argument("--steps", type=int, default=500, help="optimizer steps per trial")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--pool", type=int, default=10000, help="training images used")
    ap.add_argument("--val", type=int, default=5000, help="validation images used")
    ap.add_argument("--train-eval", type=int, default=2000,
                    help="training images whose accuracy is the train metric")
    ap.add_argument("--said", action="store_true", help="SAID instead of plain Fastfood")
    ap.add_argument("--groups", choices=["layer", "tensor"], default="layer")
    ap.add_argument("--init-seed", type=int, default=1,
                    help="seed of theta0 (torch's generator: not the C example's draws)")
    ap.add_argument("--base-seed", "--seed", type=int, default=2018,
                    help="the search's base seed (the C example's --seed): the same value "
                         "gives the same projection seeds")
    ap.add_argument("--journal", help="journal file (resumable search)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--speed-d", type=int, default=1000)
    ap.add_argument("--speed-steps", type=int, default=30)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--speed-only", action="store_true")
    mode.add_argument("--no-speed", action="store_true")
    return ap


def main():
    args = make_parser().parse_args()
    args.ds = [int(v) for v in args.ds.split(",")]
    args.lrs = [float(v) for v in args.lrs.split(",")]
    args.full_lrs = [float(v) for v in args.full_lrs.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"libintdim {intdim.version()} from {intdim.library_path()}, torch {torch.__version__}")
    x_train, y_train = load("train")
    split = 50000  # train = first 50,000 training images, val = the last 10,000
    pool = (x_train[:min(args.pool, split)], y_train[:min(args.pool, split)])
    val = (x_train[split:split + args.val], y_train[split:split + args.val])
    train_eval = (pool[0][:args.train_eval], pool[1][:args.train_eval])
    host = make_host(args, pool, val, train_eval)

    if not args.speed_only:
        run_search(args, host)
    if not args.no_speed:
        compare_speed(args, host)


if __name__ == "__main__":
    main()
