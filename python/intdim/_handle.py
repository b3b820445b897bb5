"""Ownership of library handles: close(), context managers, and release on garbage
collection through weakref.finalize (which also runs at interpreter exit, newest first, so a
trainer is destroyed before the projection it borrows)."""

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


class OwnedHandle:
    """Base class: owns one C handle, destroyed exactly once."""

    _destroy_name = None  # e.g. "intdim_proj_destroy"
    _finalizer = None

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

    def close(self):
        """Free the C handle now (idempotent). Later calls raise ValueError."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
