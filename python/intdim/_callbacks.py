"""Trampolines: Python callables called from C through ctypes function pointers.

An exception must never cross the C frames (ctypes would print it and carry on), so every
trampoline catches BaseException, stores it in a CallbackGuard and returns non-zero: the
library then stops its loop (INTDIM_ECALLBACK, or INTDIM_EINTERRUPTED for progress
callbacks) and the Python method that started the loop re-raises the stored exception with
its original traceback. KeyboardInterrupt takes the same road: while C runs, Python's
signal handler only sets a flag, and the interpreter would raise KeyboardInterrupt at the next
bytecode it executes: the first of the next trampoline, before its `try`, where ctypes could
only print it and return garbage to C. So while a library call runs on the main thread with
Python's default SIGINT handler, CallbackGuard.active() replaces that handler with one that
records a KeyboardInterrupt as the pending exception: the next trampoline returns non-zero
and the method re-raises it when C returns (at once for a call that makes no callbacks).

Once an exception is pending, later callbacks return non-zero at once without running
Python code, so nothing runs after the user's error or Ctrl-C.

Arrays handed to callbacks are numpy views of the library's buffers (no copies): they are
only valid during the callback.
"""

import ctypes
import math
import numbers
import signal
import sys
import threading

import numpy as np

from . import _lib

__all__ = ["CallbackGuard"]


def _address(float_ptr):
    return ctypes.cast(float_ptr, ctypes.c_void_p).value or 0


class _ViewCache:
    """numpy views of C buffers, remembered by address: hosts usually see the same two
    buffers at every step, so the view is built once (numpy.ctypeslib.as_array)."""

    def __init__(self, length, writable):
        self.length = length
        self.writable = writable
        self.views = {}

    def get(self, float_ptr):
        addr = _address(float_ptr)
        view = self.views.get(addr)
        if view is None:
            view = _lib.view_f32(float_ptr, self.length, self.writable)
            if len(self.views) > 8:  # buffers of finished trials: forget them
                self.views.clear()
            self.views[addr] = view
        return view


_REAL_KINDS = "fiu"  # numpy dtype kinds of a real number: floating, signed, unsigned


def _as_float(value, what):
    """A callback's loss or metric as a float. Accepted: a real number (int, float, numpy
    floating/integer scalars), a 0-d numpy array of a floating or integer dtype, a 0-d
    torch tensor of such a dtype, and any other object that converts itself with
    __float__ (a 0-d JAX, CuPy or TensorFlow array, a Decimal). Refused with TypeError:
    None, text (str, bytes: float() would parse "1.0"), booleans, complex numbers, and
    numpy arrays or torch tensors with a dimension, even of one element. The trampoline
    stores the TypeError and the calling method re-raises it."""
    if isinstance(value, (bool, np.bool_)):
        return _refuse(value, what)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.ndim == 0 and value.dtype.kind in _REAL_KINDS:
            return float(value)
        return _refuse(value, what)
    torch = sys.modules.get("torch")  # only if the host imported it: a tensor needs it
    if torch is not None and isinstance(value, torch.Tensor):
        if value.dim() == 0 and (value.dtype.is_floating_point or
                                 (not value.dtype.is_complex and value.dtype != torch.bool)):
            return float(value)
        return _refuse(value, what)
    if isinstance(value, (str, bytes, bytearray, complex, numbers.Complex)) or value is None:
        return _refuse(value, what)
    if callable(getattr(type(value), "__float__", None)):
        return float(value)
    return _refuse(value, what)


def _refuse(value, what):
    if value is None:
        raise TypeError(f"{what} returned None; it must return a float")
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    raise TypeError(f"{what} returned {type(value).__name__} {shown}; it must return a real "
                    "number (float, int, a numpy scalar or 0-d array, a 0-d tensor)")


# The C module behind `signal`: signal.signal's enum conversions cost about 2 us a call,
# which a host calling Trainer.step per batch would pay twice per step.
try:
    import _signal as _sig
except ImportError:  # not CPython
    _sig = signal
_SIGINT = int(signal.SIGINT)


class _RecordInterrupts:
    """The context manager of CallbackGuard.active."""

    __slots__ = ("guard", "previous")

    def __init__(self, guard):
        self.guard = guard
        self.previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and _sig.getsignal(_SIGINT) is signal.default_int_handler):
            self.previous = _sig.signal(_SIGINT, self.guard._record_interrupt)
        return self

    def __exit__(self, *exc_info):
        if self.previous is not None:
            _sig.signal(_SIGINT, self.previous)
            self.previous = None
        return False


class CallbackGuard:
    """Holds the first exception raised by a callback during one library call."""

    def __init__(self):
        self.pending = None

    def active(self):
        """`with guard.active():` around the library call that runs this guard's callbacks:
        Ctrl-C becomes the pending KeyboardInterrupt (see the module docstring). Left alone
        off the main thread (Python delivers signals to the main thread only) and when the
        program has its own SIGINT handler."""
        return _RecordInterrupts(self)

    def _record_interrupt(self, signum, frame):
        if self.pending is None:
            self.pending = KeyboardInterrupt()

    # ---- trampolines --------------------------------------------------------------
    def grad_fn(self, fn, length):
        """GRAD_FN calling fn(step, theta, grad) -> loss. theta is a read-only view of the
        host buffer, grad a writable view of the gradient buffer (fill all of it)."""
        thetas = _ViewCache(length, writable=False)
        grads = _ViewCache(length, writable=True)

        def trampoline(user, step, theta_p, grad_p, loss_p):
            if self.pending is not None:
                return 1
            try:
                loss = fn(int(step), thetas.get(theta_p), grads.get(grad_p))
                loss_p[0] = _as_float(loss, "grad_fn")
                return 0 if self.pending is None else 1  # Ctrl-C during fn: abort the step
            except BaseException as exc:  # noqa: B902 - KeyboardInterrupt too, see above
                self.pending = exc
                return 1

        return _lib.GRAD_FN(trampoline)

    def eval_fn(self, fn, length):
        """EVAL_FN calling fn(theta) -> metric (higher is better); None gives a NULL."""
        if fn is None:
            return _lib.EVAL_FN()
        thetas = _ViewCache(length, writable=False)

        def trampoline(user, theta_p, metric_p):
            if self.pending is not None:
                return 1
            try:
                metric_p[0] = _as_float(fn(thetas.get(theta_p)), "eval_fn")
                return 0 if self.pending is None else 1
            except BaseException as exc:  # noqa: B902
                self.pending = exc
                return 1

        return _lib.EVAL_FN(trampoline)

    def progress_fn(self, fn):
        """PROGRESS_FN calling fn(step, loss, metric) (metric None when not evaluated);
        a true return value stops the run. None gives a NULL."""
        if fn is None:
            return _lib.PROGRESS_FN()

        def trampoline(user, step, loss, metric):
            if self.pending is not None:
                return 1
            try:
                stop = fn(int(step), loss, None if math.isnan(metric) else metric)
                return 1 if stop or self.pending is not None else 0
            except BaseException as exc:  # noqa: B902
                self.pending = exc
                return 1

        return _lib.PROGRESS_FN(trampoline)

    def search_progress_fn(self, fn):
        """SEARCH_PROGRESS_FN calling fn(done, total, d, lr, eval_metric, seconds_left);
        a true return value stops the search. Without fn it still stops the search as soon
        as another callback failed, so no trial is started after an exception."""

        def trampoline(user, done, total, d, lr, metric, seconds_left):
            if self.pending is not None:
                return 1
            if fn is None:
                return 0
            try:
                stop = fn(int(done), int(total), int(d), lr, metric, seconds_left)
                return 1 if stop or self.pending is not None else 0
            except BaseException as exc:  # noqa: B902
                self.pending = exc
                return 1

        return _lib.SEARCH_PROGRESS_FN(trampoline)

    # ---- after the C call ---------------------------------------------------------
    def finish(self, status, what=""):
        """Re-raise a stored callback exception (it wins over the status it caused), else
        raise IntdimError for a failing status."""
        exc, self.pending = self.pending, None
        if exc is not None:
            try:
                raise exc.with_traceback(exc.__traceback__)
            finally:
                exc = None  # break the frame <-> exception cycle
        return _lib.check(status, what)
