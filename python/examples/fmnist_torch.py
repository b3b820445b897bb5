#!/usr/bin/python3
"""d90 of a 784-200-200-10 MLP on Fashion-MNIST from PyTorch through libintdim, and the time
per training step of (libintdim's Fastfood via ctypes + torch forward/backward) against (the
PyTorch-only reference Fastfood + the same forward/backward), both measured in this run.

    INTDIM_LIBRARY=build/lib/libintdim.so.0 /usr/bin/python3 python/examples/fmnist_torch.py
    ... --speed-only            only the per-step timing (d = 1000)
    ... --no-speed              only the d90 search

The data are Debian's dataset-fashion-mnist IDX files, read with gzip + numpy. The last
10,000 training images are the validation split that drives the search (d90 = smallest d
whose mean validation accuracy over seeds beats 0.9 x full training's); test accuracy is
reported for the chosen points, never used to choose.
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
def run_search(args, host, test):
    started = time.time()

    def progress(done, total, d, lr, metric, seconds_left):
        print(f"  trial {done}/{total}: d={d} lr={lr:g} val_acc={metric:.4f} "
              f"({time.time() - started:.0f}s, ~{seconds_left:.0f}s left)", flush=True)

    print(f"d90 search: D={host.D} ds={args.ds} lrs={args.lrs} seeds={args.seeds} "
          f"steps={args.steps} batch={args.batch} said={args.said}", flush=True)
    with host.search(ds=args.ds, lrs=args.lrs, steps=args.steps, seeds=args.seeds,
                     said=args.said, journal=args.journal, progress=progress,
                     base_seed=args.base_seed) as s:
        r = s.result()
        print(f"\nbaseline (full training) val accuracy: {r.baseline:.4f}")
        print(f"{'d':>7} {'best lr':>8} {'val mean':>9} {'spread':>8} {'seeds':>5}  pass")
        for p in s.points():
            print(f"{p.d:>7} {p.best_lr:>8g} {p.mean:>9.4f} {p.spread:>8.4f} {p.n_seeds:>5}  "
                  f"{'yes' if p.passed else 'no'}")
        if r.reached:
            print(f"d90 = {r.d90}  (bootstrap 5%..95% over seeds: {r.d90_lo}..{r.d90_hi})")
        else:
            print("d90 not reached on this grid")
        print(f"search time {time.time() - started:.0f}s")
        return r


# ---------------------------------------------------------------------------------------
# Speed: library Fastfood + torch vs torch-only reference Fastfood, d = 1000
# ---------------------------------------------------------------------------------------
def median_ms(fn, steps, warmup=3):
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        fn(warmup + i)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def compare_speed(args, host):
    d, lr = args.speed_d, args.lrs[0]
    threads = torch.get_num_threads()
    print(f"\nper-step time, d={d}, D={host.D}, batch={args.batch}, torch threads={threads}, "
          f"library threads={threads}, {args.speed_steps} steps each (median, min):")

    # forward + backward alone (what both approaches share)
    host.restore_theta0()
    grad = np.zeros(host.D, np.float32)
    fb = median_ms(lambda s: host.grad_fn(s, host.theta, grad), args.speed_steps)

    # libintdim: write theta = theta0 + P(theta_d) in place, callback, adjoint, Adam
    with host.trainer(d, kind="fastfood", seed=1, lr=lr,
                      proj_options={"threads": threads}) as t:
        ours = median_ms(lambda s: t.step(), args.speed_steps)
        proj = t.proj
        theta_d = np.random.default_rng(0).standard_normal(d).astype(np.float32)
        apply_only = median_ms(lambda s: proj.apply(theta_d), args.speed_steps)
        vjp_only = median_ms(lambda s: proj.vjp(grad), args.speed_steps)
    host.restore_theta0()

    # PyTorch-only reference: theta_d -> Fastfood in torch -> functional_call -> autograd
    ff = ReferenceFastfood(host.D, d, seed=1)
    theta0 = torch.from_numpy(host.theta0.copy())
    shapes = [(name, p.shape, p.numel()) for name, p in zip(host.names, host.params)]
    theta_d_t = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([theta_d_t], lr=lr)
    from torch.nn.utils.stateless import functional_call

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

    ref = median_ms(reference_step, args.speed_steps)
    ff_only = median_ms(lambda s: ff(theta_d_t).sum().backward(), args.speed_steps)

    rows = [("forward+backward only (torch)", fb),
            ("libintdim Fastfood + torch fwd/bwd (step)", ours),
            ("  libintdim Fastfood apply alone", apply_only),
            ("  libintdim Fastfood adjoint alone", vjp_only),
            ("reference torch Fastfood + fwd/bwd (step)", ref),
            ("  reference Fastfood forward+backward alone", ff_only)]
    for name, (med, best) in rows:
        print(f"  {name:<44} {med:8.2f} ms  (min {best:.2f})")
    print(f"  step speed-up {ref[0] / ours[0]:.2f}x; projection overhead per step: "
          f"libintdim {ours[0] - fb[0]:.2f} ms vs reference {ref[0] - fb[0]:.2f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ds", default="100,200,400,700,1000,1500,2500",
                    help="comma-separated d values")
    ap.add_argument("--lrs", default="3e-3", help="comma-separated Adam learning rates")
    ap.add_argument("--steps", type=int, default=1500, help="optimizer steps per trial")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--pool", type=int, default=50000, help="training images used")
    ap.add_argument("--said", action="store_true", help="SAID instead of plain Fastfood")
    ap.add_argument("--groups", choices=["layer", "tensor"], default="layer")
    ap.add_argument("--init-seed", type=int, default=0)
    ap.add_argument("--base-seed", type=int, default=0)
    ap.add_argument("--journal", help="journal file (resumable search)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--speed-d", type=int, default=1000)
    ap.add_argument("--speed-steps", type=int, default=30)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--speed-only", action="store_true")
    mode.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    args.ds = [int(v) for v in args.ds.split(",")]
    args.lrs = [float(v) for v in args.lrs.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"libintdim {intdim.version()} from {intdim.library_path()}, torch {torch.__version__}")
    x_train, y_train = load("train")
    x_test, y_test = load("t10k")
    n_val = 10000
    pool = (x_train[:min(args.pool, len(x_train) - n_val)],
            y_train[:min(args.pool, len(x_train) - n_val)])
    val = (x_train[-n_val:], y_train[-n_val:])
    train_eval = (pool[0][:10000], pool[1][:10000])
    host = make_host(args, pool, val, train_eval)

    if not args.speed_only:
        run_search(args, host, (x_test, y_test))
    if not args.no_speed:
        compare_speed(args, host)


if __name__ == "__main__":
    main()
