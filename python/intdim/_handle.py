"""Ownership of library handles: close(), context managers, and release on garbage
collection through weakref.finalize (which also runs at interpreter exit, newest first, so a
trainer is destroyed before the projection it borrows)."""

import threading
import weakref

from . import _lib


def _destroy(destroy_name, handle, keepalive, on_close):
    # keepalive holds objects the C handle points into (borrowed projection, host buffers)
    # until the handle is gone. Never a callback trampoline: it holds the user's callable,
    # which may refer back to the owner, and the finalizer registry would then keep the
    # owner alive for ever. The owner holds its trampolines instead: the finalizer runs
    # (destroying the handle, after which C cannot call them) before they are freed.
    getattr(_lib.lib(), destroy_name)(handle)
    if on_close is not None:
        on_close()


_calls_lock = threading.Lock()


class _InCall:
    """The context manager of OwnedHandle._in_call (a class: a generator-based one costs
    several microseconds per call, which a host calling Trainer.step per batch pays)."""

    __slots__ = ("owner",)

    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        handle = self.owner._h  # ValueError once closed
        with _calls_lock:  # `+=` on an attribute is not atomic between threads
            self.owner._calls += 1
        return handle

    def __exit__(self, *exc_info):
        with _calls_lock:
            self.owner._calls -= 1
        return False


class OwnedHandle:
    """Base class: owns one C handle, destroyed exactly once."""

    _destroy_name = None  # e.g. "intdim_proj_destroy"
    _finalizer = None
    _calls = 0  # library calls on this handle in progress (any thread, callbacks included)

    def _own(self, handle, keepalive=(), on_close=None):
        """Take ownership of `handle`; on_close runs after the handle is destroyed.
        Neither keepalive nor on_close may refer to self, directly or through a callback
        (weakref.finalize holds them strongly: self would never be collected)."""
        self._handle = handle
        self._finalizer = weakref.finalize(self, _destroy, self._destroy_name, handle,
                                           tuple(keepalive), on_close)

    @property
    def _h(self):
        if self._finalizer is None or not self._finalizer.alive:
            raise ValueError(f"this {type(self).__name__} is closed")
        return self._handle

    @property
    def closed(self):
        return self._finalizer is None or not self._finalizer.alive

    def _in_call(self):
        """`with self._in_call() as handle:` around a library call that may take long or
        call back into Python: close() must not free the handle before the call returns
        (from a callback of that call, or from another thread while ctypes has released
        the GIL)."""
        return _InCall(self)

    def close(self):
        """Free the C handle now (idempotent). Later calls raise ValueError. Refused with
        RuntimeError while a call on it is in progress (e.g. from one of its callbacks)."""
        if self._calls:
            raise RuntimeError(f"this {type(self).__name__} is in use by a call in progress "
                               "(close it after that call returns)")
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
