#!/usr/bin/python3
"""Baseline for bench_proj: Fastfood in PyTorch, written the way the reference code
computes it (REFERENCE.md, section 1), timed as forward + autograd backward.

    L = next power of two >= D (integers), x = theta_d zero-padded to L,
    y = H (G * gather(H (B * x), Pi)),  output y[:D] / sqrt(D * sum(G^2)),

H the unnormalized Walsh-Hadamard transform in Sylvester order, built from
differentiable tensor ops (per level: split in halves, add, subtract, concatenate) so
autograd gives the backward. Both transforms are size L, as in the references.

Prints one JSON line: {"D": ..., "d": ..., "threads": ..., "median_seconds": ...,
"median_cpu_seconds": ...} (CPU time of the process, all threads).
Run with Debian's interpreter (/usr/bin/python3), which has torch.
"""
import argparse
import json
import statistics
import time

import torch


def next_pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


def fwht(x):
    """Unnormalized transform of a 1-D tensor whose length is a power of two.

    The reference code's way: view the vector as a 2 x 2 x ... x 2 array and, along each
    axis, replace the halves (a, b) by (a + b, a - b). PyTorch allows at most 25 axes,
    so longer vectors fall back to the same butterflies on (rows, 2, h) views."""
    n = x.numel()
    m = n.bit_length() - 1
    if m <= 24:
        y = x.view([2] * m) if m > 0 else x
        for axis in range(m):
            a, b = torch.chunk(y, 2, dim=axis)
            y = torch.cat((a + b, a - b), dim=axis)
        return y.reshape(n)
    h = n // 2
    while h >= 1:
        pairs = x.view(-1, 2, h)
        a, b = pairs[:, 0], pairs[:, 1]
        x = torch.cat((a + b, a - b), dim=1).view(n)
        h //= 2
    return x


class Fastfood:
    def __init__(self, D, d, seed):
        gen = torch.Generator().manual_seed(seed)
        self.D, self.d, self.L = D, d, next_pow2(D)
        self.B = torch.randint(0, 2, (self.L,), generator=gen).float() * 2 - 1
        self.G = torch.randn(self.L, generator=gen)
        self.Pi = torch.randperm(self.L, generator=gen)
        self.scale = 1.0 / float(torch.sqrt(D * (self.G.double() ** 2).sum()))

    def __call__(self, theta_d):
        x = torch.nn.functional.pad(theta_d, (0, self.L - self.d))
        y = fwht(self.G * fwht(self.B * x)[self.Pi])
        return y[: self.D] * self.scale


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--D", type=int, default=1 << 20)
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", action="store_true",
                        help="verify the backward against the explicit transpose, then exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ff = Fastfood(args.D, args.d, seed=0)
    theta = torch.randn(args.d, requires_grad=True)
    g = torch.randn(args.D)

    if args.check:
        y = ff(theta)
        (y * g).sum().backward()
        # <P theta, g> must equal <theta, P^T g> = <theta, grad>
        lhs = float((y.double() * g.double()).sum())
        rhs = float((theta.double() * theta.grad.double()).sum())
        print(json.dumps({"lhs": lhs, "rhs": rhs, "ok": abs(lhs - rhs) <= 1e-4 * abs(lhs) + 1e-6}))
        return

    times, cpu_times = [], []
    for _ in range(args.repeats + 1):  # the first run is a warm-up
        theta.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        y = ff(theta)
        (y * g).sum().backward()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    print(json.dumps({"D": args.D, "d": args.d, "threads": args.threads,
                      "median_seconds": statistics.median(times[1:]),
                      "median_cpu_seconds": statistics.median(cpu_times[1:])}))


if __name__ == "__main__":
    main()
