"""libintdim from Python: measure the intrinsic dimension of training.

A ctypes binding (no compiler needed) over libintdim.so.0, found through the INTDIM_LIBRARY
environment variable, else a build tree next to this package (../../build*/lib), else the
system's installed library.

    Projection  delta = P(theta_d) and its exact adjoint
    Trainer     optimizes theta_d with a Python gradient callback
    Search      the d90 search (grid/adaptive, ask/tell, journal, local runner)
    IntdimError a library status with its message (.status, .name, .message)
    IntdimWarning a warning the library reported on success (journal: torn last line
                dropped, merged rows that disagree)
    torch_host  (import intdim.torch_host) the PyTorch adapter

Arrays are numpy float32, 1-D, C-contiguous and aligned; anything else raises TypeError
or ValueError before reaching C. Sizes and seeds are integers (int or numpy integer) in
the range of size_t / uint64_t, never wrapped (TypeError, ValueError). Arrays given to
callbacks are views of the library's buffers, valid only during the callback.
"""

from ._lib import IntdimError, IntdimWarning, constant, library_path, missing_symbols
from .projection import Projection
from .search import Search, merge_journals
from .trainer import Trainer

__all__ = ["IntdimError", "IntdimWarning", "Projection", "Trainer", "Search",
           "merge_journals", "constant", "library_path", "missing_symbols", "version",
           "strerror"]


def version():
    """The loaded library's version string, e.g. '0.1.0'."""
    from ._lib import lib
    return lib().intdim_version_string().decode()


def strerror(status):
    from ._lib import lib
    return lib().intdim_strerror(int(status)).decode()
