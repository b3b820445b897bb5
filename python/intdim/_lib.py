"""Loading libintdim with ctypes, its prototypes, statuses, constants and array checks.

Nothing here needs a compiler: the shared library is found at run time, every function is
declared from the table below (which mirrors include/intdim.h) and bound on first use, so a
library that lacks a symbol only fails when that function is called (and `missing_symbols()`
lists what is absent). Constants are never written as numbers here: they come from the
library through intdim_constant(), so the binding cannot drift from the header.
"""

import ctypes
import ctypes.util
import glob
import operator
import os
import warnings

import numpy as np

__all__ = [
    "IntdimError", "lib", "library_path", "constant", "check", "missing_symbols",
    "status_name", "PROTOTYPES", "GRAD_FN", "EVAL_FN", "PROGRESS_FN", "SEARCH_PROGRESS_FN",
    "ALLOC_FN", "FREE_FN", "as_f32", "f32_ptr", "as_size", "as_u64", "IntdimWarning",
    "call_warning", "path_arg",
]

# ---------------------------------------------------------------------------------------
# Finding the library
# ---------------------------------------------------------------------------------------
_SONAME = "libintdim.so.0"


def _unusable(path):
    """True for a missing library (a configured but unbuilt tree) or one built with
    AddressSanitizer, which aborts the interpreter when dlopen'ed without the ASan runtime
    preloaded: the build-tree search skips both."""
    try:
        with open(path, "rb") as f:
            return b"libasan.so" in f.read()
    except OSError:
        return True


def _build_tree_candidates():
    """libintdim.so.0 in ../../build*/lib relative to this package (a source checkout),
    newest first."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = glob.glob(os.path.join(root, "build*", "lib", _SONAME))
    found = [p for p in found if not _unusable(p)]
    return sorted(found, key=os.path.getmtime, reverse=True)


def _find_library():
    """INTDIM_LIBRARY if set, else the newest build tree next to the package, else the
    system's installed library."""
    env = os.environ.get("INTDIM_LIBRARY")
    if env:
        if not os.path.exists(env):
            raise OSError(f"INTDIM_LIBRARY={env!r} does not exist")
        return env
    candidates = _build_tree_candidates()
    if candidates:
        return candidates[0]
    name = ctypes.util.find_library("intdim")
    if name:
        return name
    raise OSError("libintdim not found: set INTDIM_LIBRARY to the path of libintdim.so.0, "
                  "build it next to this package (meson setup build && ninja -C build), "
                  "or install it")


# ---------------------------------------------------------------------------------------
# Prototypes (one entry per function of include/intdim.h)
# ---------------------------------------------------------------------------------------
_int, _uint, _size, _u64, _dbl = (ctypes.c_int, ctypes.c_uint, ctypes.c_size_t,
                                  ctypes.c_uint64, ctypes.c_double)
_ptr = ctypes.c_void_p            # handles and float buffers (checked in Python first)
_pp = ctypes.POINTER(ctypes.c_void_p)  # handle out-parameters
_pint = ctypes.POINTER(_int)
_psize = ctypes.POINTER(_size)
_pu64 = ctypes.POINTER(_u64)
_pdbl = ctypes.POINTER(_dbl)
_pi64 = ctypes.POINTER(ctypes.c_int64)
_str = ctypes.c_char_p
_pfloat = ctypes.POINTER(ctypes.c_float)

GRAD_FN = ctypes.CFUNCTYPE(_int, _ptr, _u64, _pfloat, _pfloat, _pdbl)
EVAL_FN = ctypes.CFUNCTYPE(_int, _ptr, _pfloat, _pdbl)
PROGRESS_FN = ctypes.CFUNCTYPE(_int, _ptr, _u64, _dbl, _dbl)
SEARCH_PROGRESS_FN = ctypes.CFUNCTYPE(_int, _ptr, _size, _size, _size, _dbl, _dbl, _dbl)
ALLOC_FN = ctypes.CFUNCTYPE(_ptr, _ptr, _size)
FREE_FN = ctypes.CFUNCTYPE(None, _ptr, _ptr)

PROTOTYPES = {
    # version, status, constants, memory
    "intdim_version": (_uint, []),
    "intdim_version_string": (_str, []),
    "intdim_strerror": (_str, [_int]),
    "intdim_last_error": (_str, []),
    "intdim_clear_error": (None, []),
    "intdim_constant": (_int, [_str, _pi64]),
    "intdim_set_allocator": (_int, [ALLOC_FN, FREE_FN, _ptr]),
    # projections
    "intdim_proj_create": (_int, [_pp, _int, _size, _size, _u64]),
    "intdim_proj_create_said": (_int, [_pp, _int, _size, _size, _size, _psize, _u64]),
    "intdim_proj_create_ex": (_int, [_pp, _int, _size, _size, _u64, _size, _psize, _size,
                                     _pint, _pdbl]),
    "intdim_proj_destroy": (None, [_ptr]),
    "intdim_proj_D": (_size, [_ptr]),
    "intdim_proj_d": (_size, [_ptr]),
    "intdim_proj_n_groups": (_size, [_ptr]),
    "intdim_proj_n_scales": (_size, [_ptr]),
    "intdim_proj_kind_of": (_int, [_ptr]),
    "intdim_proj_seed": (_u64, [_ptr]),
    "intdim_proj_bytes": (_size, [_ptr]),
    "intdim_proj_group_sizes": (_int, [_ptr, _psize, _size]),
    "intdim_proj_set": (_int, [_ptr, _int, _dbl]),
    "intdim_proj_get": (_int, [_ptr, _int, _pdbl]),
    "intdim_proj_param_bounds": (_int, [_int, _pdbl, _pdbl]),
    "intdim_proj_init_theta": (_int, [_ptr, _ptr]),
    "intdim_proj_apply": (_int, [_ptr, _ptr, _ptr]),
    "intdim_proj_vjp": (_int, [_ptr, _ptr, _ptr, _ptr]),
    "intdim_proj_create_fastfood_tables": (_int, [_pp, _size, _size, _size, _ptr, _ptr, _ptr]),
    "intdim_proj_fastfood_tables": (_int, [_ptr, _ptr, _ptr, _ptr, _size]),
    # trainer
    "intdim_trainer_create": (_int, [_pp, _ptr, _ptr, _ptr, _ptr, _uint, GRAD_FN, _ptr]),
    "intdim_trainer_destroy": (None, [_ptr]),
    "intdim_trainer_set": (_int, [_ptr, _int, _dbl]),
    "intdim_trainer_get": (_int, [_ptr, _int, _pdbl]),
    "intdim_trainer_param_bounds": (_int, [_int, _pdbl, _pdbl]),
    "intdim_trainer_step": (_int, [_ptr, _pdbl]),
    "intdim_trainer_run": (_int, [_ptr, _u64, EVAL_FN, _ptr, PROGRESS_FN, _ptr, _pdbl]),
    "intdim_trainer_evaluate": (_int, [_ptr, EVAL_FN, _ptr, _pdbl]),
    "intdim_trainer_sync": (_int, [_ptr]),
    "intdim_trainer_reset": (_int, [_ptr]),
    "intdim_trainer_d": (_size, [_ptr]),
    "intdim_trainer_steps_done": (_u64, [_ptr]),
    "intdim_trainer_get_theta_d": (_int, [_ptr, _ptr, _size]),
    "intdim_trainer_set_theta_d": (_int, [_ptr, _ptr, _size]),
    "intdim_trainer_save": (_int, [_ptr, _str]),
    "intdim_trainer_load": (_int, [_ptr, _str]),
    "intdim_checkpoint_proj": (_int, [_pp, _str]),
    # search
    "intdim_search_create": (_int, [_pp, _size]),
    "intdim_search_destroy": (None, [_ptr]),
    "intdim_search_set": (_int, [_ptr, _int, _dbl]),
    "intdim_search_get": (_int, [_ptr, _int, _pdbl]),
    "intdim_search_param_bounds": (_int, [_int, _pdbl, _pdbl]),
    "intdim_search_set_d_list": (_int, [_ptr, _psize, _size]),
    "intdim_search_set_lrs": (_int, [_ptr, _pdbl, _size]),
    "intdim_search_set_groups": (_int, [_ptr, _psize, _size]),
    "intdim_search_set_train_param": (_int, [_ptr, _int, _dbl]),
    "intdim_search_set_label": (_int, [_ptr, _str]),
    "intdim_search_label": (_str, [_ptr]),
    "intdim_search_ask": (_int, [_ptr, _pint, _pu64, _psize, _pint, _pint, _pdbl, _pu64]),
    "intdim_search_tell": (_int, [_ptr, _u64, _dbl, _dbl, _u64, _dbl, _int]),
    "intdim_search_open_journal": (_int, [_ptr, _str]),
    "intdim_search_from_journal": (_int, [_pp, _str]),
    "intdim_journal_merge": (_int, [ctypes.POINTER(_str), _size, _str]),
    "intdim_search_run": (_int, [_ptr, _ptr, _ptr, GRAD_FN, EVAL_FN, EVAL_FN, _ptr,
                                 SEARCH_PROGRESS_FN, _ptr]),
    "intdim_search_run_trial": (_int, [_ptr, _ptr, _ptr, GRAD_FN, EVAL_FN, EVAL_FN, _ptr,
                                       _size, _int, _int, _dbl, _u64, _pdbl, _pdbl, _pu64,
                                       _pdbl, _pint]),
    "intdim_search_result": (_int, [_ptr, _psize, _pint, _pdbl, _psize, _psize]),
    "intdim_search_trials_done": (_size, [_ptr]),
    "intdim_search_D": (_size, [_ptr]),
    "intdim_search_complete": (_int, [_ptr]),
    "intdim_search_n_points": (_size, [_ptr]),
    "intdim_search_point": (_int, [_ptr, _size, _psize, _pdbl, _pdbl, _pdbl, _psize, _pint]),
}


class _Library:
    """The loaded library; each function is bound (restype/argtypes set) on first access."""

    # A function that arrived with the last incompatible change of the unreleased 0.1 API
    # (intdim_checkpoint_proj and intdim_search_set_groups swapped their arguments): a
    # library without it would take this binding's calls with their arguments swapped.
    _NEWEST = "intdim_clear_error"

    def __init__(self, path):
        self.path = path
        self._cdll = ctypes.CDLL(path)  # CDLL releases the GIL during calls
        if not hasattr(self._cdll, self._NEWEST):
            raise OSError(f"{path} is older than this binding (it has no {self._NEWEST}): "
                          "rebuild libintdim from the same checkout")

    def __getattr__(self, name):
        proto = PROTOTYPES.get(name)
        if proto is None:
            raise AttributeError(f"{name} is not a libintdim function known to this binding")
        try:
            fn = getattr(self._cdll, name)
        except AttributeError:
            raise NotImplementedError(
                f"{name} is missing from {self.path} (library older than the binding?)"
            ) from None
        fn.restype, fn.argtypes = proto
        setattr(self, name, fn)  # later lookups skip __getattr__
        return fn

    def has(self, name):
        return hasattr(self._cdll, name)


_LIB = None


def lib():
    """The process-wide library handle (loaded on first use)."""
    global _LIB
    if _LIB is None:
        _LIB = _Library(_find_library())
    return _LIB


def library_path():
    return lib().path


def missing_symbols():
    """Functions of the header that the loaded library does not export."""
    return sorted(name for name in PROTOTYPES if not lib().has(name))


# ---------------------------------------------------------------------------------------
# Constants and statuses
# ---------------------------------------------------------------------------------------
_CONSTANTS = {}

# Status names from the header (the numbers come from the library).
_STATUS_NAMES = ("OK", "EINVAL", "ENOMEM", "ETOOBIG", "ECALLBACK", "ENONFINITE", "EIO",
                 "EFORMAT", "EMISMATCH", "ESTATE", "EUNSUPPORTED", "EINTERRUPTED", "ENOTFOUND")


def constant(name):
    """The value of a public constant, e.g. constant("PROJ_FASTFOOD") or
    constant("INTDIM_PROJ_FASTFOOD"). KeyError if the library does not know it."""
    full = name if name.startswith("INTDIM_") else "INTDIM_" + name
    value = _CONSTANTS.get(full)
    if value is None:
        out = ctypes.c_int64()
        if lib().intdim_constant(full.encode(), ctypes.byref(out)) != 0:
            raise KeyError(f"libintdim has no constant named {full!r}")
        value = _CONSTANTS[full] = int(out.value)
    return value


def status_name(status):
    """'INTDIM_EINVAL' for the EINVAL status, or 'status <n>' for an unknown one."""
    for short in _STATUS_NAMES:
        try:
            if constant(short) == status:
                return "INTDIM_" + short
        except KeyError:
            pass
    return f"status {status}"


class IntdimError(Exception):
    """A libintdim call failed. `status` is the library's (negative) status, `name` its
    INTDIM_* name and `message` the library's detailed message (intdim_last_error)."""

    def __init__(self, status, message=""):
        self.status = int(status)
        self.name = status_name(self.status)
        self.message = message
        reason = lib().intdim_strerror(self.status).decode()
        super().__init__(f"{message} [{self.name}: {reason}]" if message
                         else f"[{self.name}: {reason}]")


def check(status, what=""):
    """Raise IntdimError with the library's message for a non-zero status."""
    if status != 0:
        message = lib().intdim_last_error().decode(errors="replace")
        if not message:
            message = what
        raise IntdimError(status, message)
    return status


class IntdimWarning(UserWarning):
    """A warning the library left in intdim_last_error() on success (e.g. a journal's torn
    last line was dropped, or merged journals disagreed on a trial)."""


def call_warning(fn, *args, what="", stacklevel=3):
    """fn(*args), a libintdim call that may leave a warning on success: raise IntdimError
    for a failing status, else issue IntdimWarning if the call left a "warning: ..." message.
    The thread's message is cleared first (intdim_clear_error), so a message left by an
    earlier call is never taken for this call's warning (ctypes calls run on the calling
    thread, whose message the library writes and clears)."""
    lib().intdim_clear_error()
    status = fn(*args)
    check(status, what)
    after = lib().intdim_last_error()
    if after.startswith(b"warning"):
        text = after.decode(errors="replace")
        if text.startswith("warning: "):
            text = text[len("warning: "):]
        warnings.warn(IntdimWarning(text), stacklevel=stacklevel)
    return status


def path_arg(path, what="path"):
    """A file name for C: str, bytes or os.PathLike, encoded as the OS does."""
    try:
        return os.fsencode(path)
    except TypeError:
        raise TypeError(f"{what} must be a str, bytes or os.PathLike, not "
                        f"{type(path).__name__}") from None


# ---------------------------------------------------------------------------------------
# Integer checks: ctypes would silently wrap a negative or too large int modulo 2^64
# ---------------------------------------------------------------------------------------
_SIZE_BITS = 8 * ctypes.sizeof(ctypes.c_size_t)


def _as_uint(value, name, bits, positive):
    try:
        v = operator.index(value)  # int, numpy integers; not float, str, None
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None
    lo, hi = (1 if positive else 0), (1 << bits) - 1
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, 2^{bits} - 1], got {v}")
    return v


def as_size(value, name, positive=False):
    """`value` as a size_t (an int in [0, SIZE_MAX], or [1, SIZE_MAX] when positive);
    TypeError for a non-integer, ValueError out of range. Accepts numpy integers."""
    return _as_uint(value, name, _SIZE_BITS, positive)


def as_u64(value, name, positive=False):
    """`value` as a uint64_t (an int in [0, 2^64 - 1]); as as_size otherwise."""
    return _as_uint(value, name, 64, positive)


# ---------------------------------------------------------------------------------------
# Array checks: nothing wrongly typed, shaped or strided ever reaches C
# ---------------------------------------------------------------------------------------
def as_f32(arr, name, length, writable=False):
    """Return `arr` unchanged if it is a 1-D, C-contiguous, aligned numpy float32 array of
    `length` elements (and writable when asked); otherwise raise TypeError (not a numpy
    array, wrong dtype) or ValueError (shape, contiguity, alignment, read-only). No silent
    copies: a copy of an output buffer would throw the library's result away, and a copy of
    an input one would hide an expensive conversion."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32, not {type(arr).__name__}")
    if arr.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, not {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != length:
        raise ValueError(f"{name} must have {length} elements, got {arr.shape[0]}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if not arr.flags.aligned:
        # e.g. numpy.frombuffer at an odd byte offset: C reads floats (with SIMD) from it
        raise ValueError(f"{name} must be aligned: its address is not a multiple of "
                         f"{arr.dtype.alignment} (copy it with numpy.array)")
    if writable and not arr.flags.writeable:
        raise ValueError(f"{name} must be writable")
    return arr


def f32_ptr(arr):
    """Address of a checked float32 array's first element (for a c_void_p argument)."""
    return arr.ctypes.data


def view_f32(ptr, length, writable=True):
    """A numpy view (no copy) of `length` floats at a ctypes float pointer."""
    if not ptr or length == 0:
        return np.empty(0, dtype=np.float32)
    view = np.ctypeslib.as_array(ptr, shape=(length,))
    if not writable:
        view.flags.writeable = False
    return view
