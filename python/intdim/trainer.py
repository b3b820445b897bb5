"""Trainer: optimizes theta_d in a projection's subspace with a Python gradient callback."""

import ctypes
import math

import numpy as np

from . import _lib, _params
from ._callbacks import CallbackGuard
from ._handle import OwnedHandle

__all__ = ["Trainer"]

_TRAIN = "TRAIN_"


class _Calling:
    """The context manager of Trainer._calling."""

    __slots__ = ("trainer", "parts")

    def __init__(self, trainer):
        self.trainer = trainer
        self.parts = ()

    def __enter__(self):
        t = self.trainer
        entered = []
        try:  # whatever raises part way (Ctrl-C included), what was entered is left again
            own = t._in_call()
            handle = own.__enter__()
            entered.append(own)
            proj = t.proj._in_call()
            proj.__enter__()
            entered.append(proj)
            interrupts = t._guard.active()
            interrupts.__enter__()
            entered.append(interrupts)
        except BaseException:
            for part in reversed(entered):
                part.__exit__(None, None, None)
            raise
        self.parts = tuple(reversed(entered))
        return handle

    def __exit__(self, *exc_info):
        for part in self.parts:
            part.__exit__(None, None, None)
        self.parts = ()
        return False


class Trainer(OwnedHandle):
    """A subspace trainer (intdim_trainer) over a host parameter buffer.

    Trainer(proj, theta, grad_fn, theta0=None, grad=None, borrow_theta0=False, **params)

    proj:   a Projection (kept open while the trainer is).
    theta:  the host's float32 (D,) buffer; the library writes theta0 + P(theta_d) into it
            before every callback, so tensors viewing it see the new parameters in place.
    grad_fn(step, theta, grad) -> loss: writes dloss/dtheta into grad (a view of the
            gradient buffer, fill all of it) and returns the loss. theta is a read-only view
            of the host buffer. An exception stops the library's loop and is re-raised
            from the call that started it.
    theta0: base point (float32 (D,)); None = the current contents of theta. Copied unless
            borrow_theta0 (then it is kept alive with the trainer).
    grad:   gradient buffer (float32 (D,)) the callback writes; None = the library's own.
    params: trainer parameters by name: optimizer ('sgd', 'adam', 'adamw'), lr, momentum,
            nesterov, beta1, beta2, eps, weight_decay, schedule ('constant', 'linear',
            'cosine'), warmup_steps, total_steps, clip_norm, lambda_lr, nonfinite ('stop',
            'skip'), eval_every, min_lr_ratio.
    """

    _destroy_name = "intdim_trainer_destroy"

    def __init__(self, proj, theta, grad_fn, *, theta0=None, grad=None, borrow_theta0=False,
                 **params):
        if not callable(grad_fn):
            raise TypeError("grad_fn must be callable: grad_fn(step, theta, grad) -> loss")
        proj_handle = proj._h  # raises if closed
        D = proj.D
        self._D = D
        theta = _lib.as_f32(theta, "theta", D, writable=True)
        theta0_ptr = None
        if theta0 is not None:
            theta0 = _lib.as_f32(theta0, "theta0", D)
            theta0_ptr = theta0.ctypes.data
        grad_ptr = None
        if grad is not None:
            grad = _lib.as_f32(grad, "grad", D, writable=True)
            grad_ptr = grad.ctypes.data
        flags = _lib.constant("TRAINER_BORROW_THETA0") if borrow_theta0 else 0
        self._guard = CallbackGuard()
        self._grad_cb = self._guard.grad_fn(grad_fn, D)
        out = ctypes.c_void_p()
        _lib.check(_lib.lib().intdim_trainer_create(
            ctypes.byref(out), proj_handle, theta.ctypes.data, theta0_ptr, grad_ptr, flags,
            self._grad_cb, None), "intdim_trainer_create")
        proj._users += 1

        def release(proj=proj):
            proj._users -= 1

        self.proj = proj
        self.theta = theta
        # self._grad_cb (which holds grad_fn) stays on self only, not in the finalizer's
        # keepalive: a grad_fn referring back to this trainer would otherwise keep it alive
        # for ever (see _handle._destroy).
        self._own(out.value, keepalive=(proj, theta, theta0 if borrow_theta0 else None,
                                        grad), on_close=release)
        try:
            for name, value in params.items():
                self.set(name, value)
        except BaseException:
            self.close()  # a refused parameter: release the handle and the projection now
            raise

    # ---- parameters ---------------------------------------------------------------
    def set(self, name, value):
        pid = _params.param_id(_TRAIN, name)
        _lib.check(_lib.lib().intdim_trainer_set(self._h, pid,
                                                 _params.param_value(_TRAIN, name, value)))

    def get(self, name):
        return _params.get(_lib.lib().intdim_trainer_get, self._h,
                           _params.param_id(_TRAIN, name))

    @staticmethod
    def bounds(name):
        return _params.bounds(_lib.lib().intdim_trainer_param_bounds,
                              _params.param_id(_TRAIN, name))

    # ---- training -------------------------------------------------------------------
    def _calling(self):
        """`with self._calling() as handle:` around a call that runs callbacks: neither
        this trainer nor its projection may be closed (or the projection's parameters set)
        until it returns, and Ctrl-C becomes the pending KeyboardInterrupt
        (CallbackGuard.active)."""
        return _Calling(self)

    def step(self):
        """One optimizer step; returns the loss the callback reported. The host buffer is
        then one update behind (it holds what the callback saw): sync() brings it up."""
        loss = ctypes.c_double(math.nan)
        with self._calling() as h:
            status = _lib.lib().intdim_trainer_step(h, ctypes.byref(loss))
        self._guard.finish(status, "intdim_trainer_step")
        return loss.value

    def run(self, n_steps, eval_fn=None, progress=None):
        """n_steps steps; eval_fn(theta) -> metric every 'eval_every' steps and at the end;
        progress(step, loss, metric_or_None) returning True stops the run (IntdimError with
        INTDIM_EINTERRUPTED). Returns the last metric (NaN if none). When it returns (or
        raises), the host buffer holds theta0 + P(theta_d) for the current theta_d."""
        n_steps = _lib.as_u64(n_steps, "n_steps")
        for what, fn in (("eval_fn", eval_fn), ("progress", progress)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{what} must be callable or None, not {type(fn).__name__}")
        eval_cb = self._guard.eval_fn(eval_fn, self._D)
        progress_cb = self._guard.progress_fn(progress)
        metric = ctypes.c_double(math.nan)
        with self._calling() as h:
            status = _lib.lib().intdim_trainer_run(h, n_steps, eval_cb, None, progress_cb,
                                                   None, ctypes.byref(metric))
        self._guard.finish(status, "intdim_trainer_run")
        return metric.value

    def evaluate(self, eval_fn):
        """Write theta0 + P(theta_d) into the host buffer, then return eval_fn(theta)."""
        if not callable(eval_fn):
            raise TypeError("eval_fn must be callable: eval_fn(theta) -> metric")
        eval_cb = self._guard.eval_fn(eval_fn, self._D)
        metric = ctypes.c_double(math.nan)
        with self._calling() as h:
            status = _lib.lib().intdim_trainer_evaluate(h, eval_cb, None, ctypes.byref(metric))
        self._guard.finish(status, "intdim_trainer_evaluate")
        return metric.value

    def sync(self):
        """Write theta0 + P(theta_d) into the host buffer."""
        _lib.check(_lib.lib().intdim_trainer_sync(self._h))

    def reset(self):
        """theta_d back to its initial value, optimizer state cleared, step 0."""
        _lib.check(_lib.lib().intdim_trainer_reset(self._h))

    # ---- state ----------------------------------------------------------------------
    @property
    def d(self):
        return int(_lib.lib().intdim_trainer_d(self._h))

    @property
    def steps_done(self):
        return int(_lib.lib().intdim_trainer_steps_done(self._h))

    @property
    def theta_d(self):
        """A copy of theta_d (float32 (d,)); assign a float32 (d,) array to set it."""
        n = self.d
        out = np.empty(n, dtype=np.float32)
        _lib.check(_lib.lib().intdim_trainer_get_theta_d(self._h, out.ctypes.data, n))
        return out

    @theta_d.setter
    def theta_d(self, values):
        n = self.d
        values = _lib.as_f32(values, "theta_d", n)
        _lib.check(_lib.lib().intdim_trainer_set_theta_d(self._h, values.ctypes.data, n))

    def save(self, path):
        """Checkpoint (atomic write)."""
        _lib.check(_lib.lib().intdim_trainer_save(self._h, _lib.path_arg(path)))

    def load(self, path):
        """Restore a checkpoint of this projection and theta0 (the trainer is untouched if
        it is refused)."""
        _lib.check(_lib.lib().intdim_trainer_load(self._h, _lib.path_arg(path)))

    def __repr__(self):
        if self.closed:
            return "<Trainer (closed)>"
        return f"<Trainer d={self.d} steps_done={self.steps_done}>"
