"""PyTorch host: subspace training and the d90 search for an nn.Module.

TorchHost flattens the module's parameters into ONE float32 numpy buffer and re-points every
parameter (and its .grad) at a view of it, so the library writes theta = theta0 + P(theta_d)
straight into the tensors the module computes with, and backward() accumulates straight into
the gradient buffer the library reads. Nothing is copied per step unless autograd replaced a
.grad tensor (then it is copied back once and re-pointed).

    host = TorchHost(model, torch.nn.functional.cross_entropy, batches, eval_fn=accuracy_fn)
    with host.trainer(d=1000, lr=1e-2) as t:
        t.run(500)
    s = host.search(ds=[100, 300, 1000], lrs=[1e-2], steps=500, seeds=3)
    print(s.result())

CPU and float32 only (the library's buffers are host memory).
"""


import numpy as np
import torch

from .projection import Projection
from .search import Search
from .trainer import Trainer

__all__ = ["TorchHost", "ReferenceFastfood", "accuracy"]


def accuracy(module, inputs, targets, batch=2000):
    """Fraction of rows of `inputs` whose argmax output equals `targets`."""
    correct = 0
    with torch.no_grad():
        for start in range(0, inputs.shape[0], batch):
            out = module(inputs[start:start + batch])
            correct += int((out.argmax(dim=1) == targets[start:start + batch]).sum())
    return correct / max(int(inputs.shape[0]), 1)


class TorchHost:
    """Host for an nn.Module.

    module:  the model (CPU, float32 parameters). Its parameters are re-pointed at views of
             `self.theta`; their values at construction are theta0.
    loss_fn: loss_fn(output, target) -> scalar tensor.
    data:    either a callable data(step) -> (inputs, targets) (deterministic minibatches,
             recommended: a resumed trial then sees the same data), or an iterable of
             (inputs, targets) that is cycled.
    eval_fn: eval_fn(module) -> metric, higher is better (e.g. test accuracy).
    train_eval_fn: optional, the same on training data (for generalization gaps).
    train_mode: True (default): the gradient callback puts the module in train() mode at
             every step (dropout on, BatchNorm updating its running statistics); False:
             it leaves the mode as the caller set it (e.g. eval() to freeze BatchNorm).
    Module buffers (BatchNorm running statistics and counters) are not trained parameters:
    they are saved at construction and put back by restore_theta0() and at the first step
    (step 0) of every run or trial, so trials start from the same model and do not see
    statistics gathered by earlier ones.
    groups:  'layer' (one SAID group per weight/bias pair: parameters sharing a module
             prefix) or 'tensor' (one per parameter tensor).
    """

    def __init__(self, module, loss_fn, data, eval_fn=None, train_eval_fn=None,
                 groups="layer", train_mode=True):
        self.module = module
        self.train_mode = train_mode
        self.loss_fn = loss_fn
        self.eval_metric = eval_fn
        self.train_metric = train_eval_fn
        self._data = data
        self._iter = None
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("the module has no trainable parameters")
        for name, p in named:
            if p.dtype != torch.float32 or p.device.type != "cpu":
                raise TypeError(f"parameter {name} must be float32 on the CPU, "
                                f"is {p.dtype} on {p.device}")
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.D = sum(p.numel() for p in self.params)
        self.theta = np.empty(self.D, dtype=np.float32)
        self.grad = np.zeros(self.D, dtype=np.float32)
        self._theta_t = torch.from_numpy(self.theta)
        self._grad_t = torch.from_numpy(self.grad)
        self._grad_views = []
        offset = 0
        with torch.no_grad():
            for p in self.params:
                n = p.numel()
                self._theta_t[offset:offset + n].copy_(p.detach().reshape(-1))
                p.data = self._theta_t[offset:offset + n].view_as(p)
                view = self._grad_t[offset:offset + n].view_as(p)
                p.grad = view
                self._grad_views.append(view)
                offset += n
        self.theta0 = self.theta.copy()
        # by name: a module may replace a buffer tensor (x = x + 1), and the one to reset is
        # whatever the name holds at the time
        self._buffers0 = [(n, b.detach().clone()) for n, b in module.named_buffers()]
        self.set_groups(groups)
        self.grad_copies = 0  # steps where autograd replaced a .grad (diagnostic)

    # ---- groups ---------------------------------------------------------------------
    def set_groups(self, mode):
        """'layer': one group per module (weight + bias), 'tensor': one per tensor."""
        if mode not in ("layer", "tensor"):
            raise ValueError(f"groups must be 'layer' or 'tensor', not {mode!r}")
        sizes, keys = [], []
        for name, p in zip(self.names, self.params):
            key = name.rsplit(".", 1)[0] if mode == "layer" else name
            if keys and keys[-1] == key:
                sizes[-1] += p.numel()
            else:
                keys.append(key)
                sizes.append(p.numel())
        self.group_mode = mode
        self.group_names = keys
        self.group_sizes = sizes

    # ---- callbacks ------------------------------------------------------------------
    def batch(self, step):
        if callable(self._data):
            return self._data(step)
        if self._iter is None:
            self._iter = iter(self._data)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = iter(self._data)
            return next(self._iter)

    def _sync_grad_views(self):
        """Autograd normally accumulates into the existing .grad in place; if it replaced
        one, copy it into the flat buffer and re-point it."""
        for p, view in zip(self.params, self._grad_views):
            if p.grad is None:
                view.zero_()
                p.grad = view
            elif p.grad.data_ptr() != view.data_ptr():
                view.copy_(p.grad)
                p.grad = view
                self.grad_copies += 1

    def grad_fn(self, step, theta, grad):
        """intdim grad callback: forward + backward of minibatch `step`."""
        if step == 0:  # a new run or trial: the buffers it starts from are theta0's
            self._restore_buffers()
        inputs, targets = self.batch(step)
        self.grad.fill(0.0)
        if self.train_mode:
            self.module.train()
        with torch.enable_grad():
            loss = self.loss_fn(self.module(inputs), targets)
            loss.backward()
        self._sync_grad_views()
        if grad.ctypes.data != self.grad.ctypes.data:  # the library's own buffer
            np.copyto(grad, self.grad)
        return float(loss.detach())

    def metric_callback(self, fn):
        """An eval callback (theta) -> fn(module) in eval mode without autograd."""
        def callback(theta):
            if theta.ctypes.data != self.theta.ctypes.data:
                raise RuntimeError("the library evaluated another buffer than host.theta")
            was_training = self.module.training
            self.module.eval()
            try:
                with torch.no_grad():
                    return float(fn(self.module))
            finally:
                self.module.train(was_training)  # the caller's mode (see train_mode)
        return callback

    def _restore_buffers(self):
        with torch.no_grad():
            for name, saved in self._buffers0:
                owner, _, attr = name.rpartition(".")
                module = self.module.get_submodule(owner) if owner else self.module
                current = getattr(module, attr, None)
                if isinstance(current, torch.Tensor) and current.shape == saved.shape:
                    current.copy_(saved)
                else:  # replaced by something else: put a copy of the saved one back
                    setattr(module, attr, saved.clone())

    def restore_theta0(self):
        """Put the initial parameters and buffers back into the module."""
        np.copyto(self.theta, self.theta0)
        self._restore_buffers()

    # ---- library objects ------------------------------------------------------------
    def projection(self, d, kind="fastfood", seed=0, said=False, **kw):
        if said:
            kw.setdefault("groups", self.group_sizes)
        return Projection(kind, self.D, d, seed, said=said, **kw)

    def trainer(self, d, kind="fastfood", seed=0, said=False, proj_options=None, **params):
        """A Trainer over a new projection (closed with the trainer). The module's
        parameters follow theta0 + P(theta_d)."""
        proj = self.projection(d, kind, seed, said, **(proj_options or {}))
        trainer = Trainer(proj, self.theta, self.grad_fn, theta0=self.theta0,
                          grad=self.grad, **params)
        return _OwningTrainer(trainer, proj)

    def evaluate(self):
        """eval_fn(module) at the current parameters."""
        return self.metric_callback(self.eval_metric)(self.theta)

    def search(self, ds=None, lrs=(1e-3,), steps=1000, seeds=1, kind="fastfood", said=False,
               journal=None, baseline=None, progress=None, train_params=None, **params):
        """Run the d90 search on this model and return the finished Search (caller closes
        it). ds: explicit d values (else the library's log grid, see Search params);
        baseline: a known full-training metric (else IDENTITY trials measure it)."""
        if self.eval_metric is None:
            raise ValueError("a search needs eval_fn")
        search = Search(self.D, steps=steps, seeds=seeds, kind=kind, said=said,
                        baseline=baseline, **params)
        try:
            if said:
                search.set_groups(self.group_sizes)
            if ds is not None:
                search.set_d_list(ds)
            search.set_lrs(lrs)
            for name, value in (train_params or {}).items():
                search.set_train_param(name, value)
            if journal is not None:
                search.open_journal(journal)
            train_cb = self.metric_callback(self.train_metric) if self.train_metric else None
            search.run(self.theta, self.grad_fn, self.metric_callback(self.eval_metric),
                       train_fn=train_cb, theta0=self.theta0, progress=progress)
        except BaseException:
            search.close()
            raise
        finally:
            self.restore_theta0()
        return search


class _OwningTrainer:
    """A Trainer that also closes its projection; forwards everything else."""

    def __init__(self, trainer, proj):
        self._trainer = trainer
        self.proj = proj

    def __getattr__(self, name):
        return getattr(self._trainer, name)

    def __setattr__(self, name, value):
        if name in ("_trainer", "proj"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._trainer, name, value)

    def close(self):
        self._trainer.close()
        self.proj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


# ---------------------------------------------------------------------------------------
# The PyTorch-only reference approach, for comparisons
# ---------------------------------------------------------------------------------------
def _fwht(x):
    """Unnormalized Walsh-Hadamard transform in Sylvester order of a length-2^k vector."""
    n = x.shape[0]
    h = 1
    while h < n:
        y = x.view(n // (2 * h), 2, h)
        x = torch.stack((y[:, 0] + y[:, 1], y[:, 0] - y[:, 1]), dim=1).reshape(n)
        h *= 2
    return x


class ReferenceFastfood(torch.nn.Module):
    """The Fastfood map as the public reference code computes it, in plain torch with
    autograd (see REFERENCE.md): y = H (G * gather(H (B * pad(x)), Pi)), output
    y[:D] / sqrt(D * sum G^2). Compared with the library for speed (bench/) and, through
    its tables, for values: intdim.Projection.from_fastfood_tables(ff.D, ff.d, ff.B, ff.Pi,
    ff.G) is this map; ReferenceFastfood.from_tables(D, d, *projection.fastfood_tables())
    is a seeded library projection in torch."""

    def __init__(self, D, d, seed=0):
        super().__init__()
        L = 1
        while L < D:
            L *= 2
        if not 1 <= d <= L:
            raise ValueError(f"need 1 <= d <= L={L}, got d={d}")
        gen = torch.Generator().manual_seed(seed)
        self.D, self.d, self.L = D, d, L
        self.register_buffer("B", torch.randint(0, 2, (L,), generator=gen).float() * 2 - 1)
        self.register_buffer("Pi", torch.randperm(L, generator=gen))
        self.register_buffer("G", torch.randn(L, generator=gen))
        self.scale = float(1.0 / torch.sqrt(D * (self.G ** 2).sum()))

    @classmethod
    def from_tables(cls, D, d, B, Pi, G):
        """The reference map with given tables (e.g. intdim.Projection.fastfood_tables())."""
        self = cls(D, d)
        self.B = torch.as_tensor(B, dtype=torch.float32).clone()
        self.Pi = torch.as_tensor(Pi, dtype=torch.int64).clone()
        self.G = torch.as_tensor(G, dtype=torch.float32).clone()
        if not self.B.shape == self.Pi.shape == self.G.shape == (self.L,):
            raise ValueError(f"tables must have L = {self.L} entries each")
        self.scale = float(1.0 / torch.sqrt(D * (self.G.double() ** 2).sum()))
        return self

    def forward(self, theta_d):
        x = torch.zeros(self.L, dtype=theta_d.dtype)
        x = torch.cat((theta_d, x[self.d:]))
        y = _fwht(self.G * _fwht(self.B * x)[self.Pi])
        return y[:self.D] * self.scale
