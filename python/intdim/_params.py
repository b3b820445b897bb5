"""Parameters by name: 'lr' -> INTDIM_TRAIN_LR, 'optimizer'='adamw' -> INTDIM_OPT_ADAMW.

Names are the header's enum names without their prefix, in lower case; the numbers always
come from intdim_constant(). Values of enumerated parameters may be given as names.
"""

import ctypes
import math
import operator

from . import _lib

# parameter name -> prefix of its named values
_VALUE_PREFIX = {
    "TRAIN_OPTIMIZER": "OPT_",
    "TRAIN_SCHEDULE": "SCHED_",
    "TRAIN_NONFINITE": "NONFINITE_",
    "SEARCH_STRATEGY": "STRATEGY_",
    "SEARCH_KIND": "PROJ_",
    "PROJ_KERNEL": "KERNEL_",
}


def _integer(value):
    """operator.index(value) for ints and numpy integers, None for anything else."""
    if isinstance(value, str):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def param_id(prefix, name):
    """Constant of parameter `name` in group `prefix` ('PROJ_', 'TRAIN_', 'SEARCH_');
    integers (numpy integers too) pass through."""
    number = _integer(name)
    if number is not None:
        return number
    if not isinstance(name, str):
        raise TypeError(f"a parameter is a name or an integer, not {type(name).__name__}")
    try:
        return _lib.constant(prefix + name.upper())
    except KeyError:
        raise ValueError(f"unknown parameter {name!r} (no INTDIM_{prefix}{name.upper()})") \
            from None


def param_value(prefix, name, value):
    """Numeric value of a parameter: named values ('adam', 'cosine', 'fastfood') are looked
    up, booleans become 0/1, None becomes NaN."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        key = prefix + str(name).upper()
        value_prefix = _VALUE_PREFIX.get(key)
        if value_prefix is None:
            raise ValueError(f"parameter {name!r} takes a number, not {value!r}")
        try:
            return float(_lib.constant(value_prefix + value.upper()))
        except KeyError:
            raise ValueError(f"unknown value {value!r} for parameter {name!r}") from None
    return float(value)


def kind_id(kind):
    """Projection kind from 'fastfood'/'dense'/'sparse'/'identity' or an integer (numpy
    integers too)."""
    number = _integer(kind)
    if number is not None:
        return number
    if not isinstance(kind, str):
        raise TypeError(f"a projection kind is a name or an integer, not "
                        f"{type(kind).__name__}")
    try:
        return _lib.constant("PROJ_" + kind.upper())
    except KeyError:
        raise ValueError(f"unknown projection kind {kind!r}") from None


def kind_name(kind):
    for name in ("identity", "dense", "sparse", "fastfood"):
        if _lib.constant("PROJ_" + name.upper()) == kind:
            return name
    return str(kind)


def bounds(fn, pid):
    lo, hi = ctypes.c_double(), ctypes.c_double()
    _lib.check(fn(pid, ctypes.byref(lo), ctypes.byref(hi)))
    return lo.value, hi.value


def get(fn, handle, pid):
    out = ctypes.c_double()
    _lib.check(fn(handle, pid, ctypes.byref(out)))
    return out.value
