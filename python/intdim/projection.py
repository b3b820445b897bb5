"""Projection: delta_D = P(theta_d) and its exact adjoint, over an intdim_proj handle."""

import ctypes

import numpy as np

from . import _lib, _params
from ._handle import OwnedHandle

__all__ = ["Projection"]


def _size_array(values, what):
    values = [_lib.as_size(v, f"{what}[{i}]") for i, v in enumerate(values)]
    return (ctypes.c_size_t * max(len(values), 1))(*values), len(values)


class Projection(OwnedHandle):
    """A random projection P: R^d -> R^D (intdim_proj).

    Projection(kind, D, d, seed=0, groups=None, said=False, per_group=False, block=None,
               density=None, memory_budget=None, threads=None, kernel=None)

    kind: 'fastfood', 'dense', 'sparse', 'identity' (or the INTDIM_PROJ_* value).
    D, d: positive integers (int or numpy integer); seed: an integer in [0, 2^64 - 1].
    groups: sizes of contiguous parameter groups summing to D (needed by said/per_group).
    said: one trainable scale per group; d then counts the scales (the last n_groups entries
          of theta_d). per_group: one Fastfood block per group. block: Fastfood in blocks of
          this many rows (a power of two; Le et al.'s stacked Fastfood), independent of groups.
    Use as a context manager or call close(); otherwise it is freed by the garbage
    collector (but never while a Trainer still uses it).
    """

    _destroy_name = "intdim_proj_destroy"

    def __init__(self, kind, D, d, seed=0, *, groups=None, said=False, per_group=False,
                 block=None, density=None, memory_budget=None, threads=None, kernel=None):
        self._users = 0  # open trainers borrowing this projection
        kind = _params.kind_id(kind)
        D = _lib.as_size(D, "D", positive=True)
        d = _lib.as_size(d, "d", positive=True)
        seed = _lib.as_u64(seed, "seed")
        params = []
        if said:
            params.append(("SAID", 1.0))
        if per_group:
            params.append(("FASTFOOD_PER_GROUP", 1.0))
        if block is not None:
            params.append(("FASTFOOD_BLOCK", block))
        if density is not None:
            params.append(("SPARSE_DENSITY", density))
        if memory_budget is not None:
            params.append(("MEMORY_BUDGET", memory_budget))
        ids = [_params.param_id("PROJ_", name) for name, _ in params]
        n_params = len(ids)
        id_arr = (ctypes.c_int * max(n_params, 1))(*ids)
        val_arr = (ctypes.c_double * max(n_params, 1))(*[float(v) for _, v in params])
        sizes, n_groups = _size_array([] if groups is None else groups, "groups")
        out = ctypes.c_void_p()
        _lib.check(_lib.lib().intdim_proj_create_ex(
            ctypes.byref(out), kind, D, d, seed,
            n_groups, sizes if n_groups else None, n_params, id_arr if n_params else None,
            val_arr if n_params else None), "intdim_proj_create_ex")
        self._adopt(out.value, threads, kernel)

    def _adopt(self, handle, threads=None, kernel=None):
        """Own a new handle and apply the runtime parameters given at construction."""
        self._own(handle)
        self._cache_sizes()
        if threads is not None:
            self.set("threads", threads)
        if kernel is not None:
            self.set("kernel", kernel)

    @classmethod
    def from_fastfood_tables(cls, D, d, B, Pi, G, *, threads=None, kernel=None):
        """REFERENCE's single-block Fastfood from explicit tables, e.g. those of a PyTorch
        run of the reference code (intdim.torch_host.ReferenceFastfood): B (+-1), Pi (a
        permutation of 0..L-1) and G, each of L = nextpow2(D) entries; numpy arrays or CPU
        tensors (copied). Such a projection has no seed: a trainer checkpoint holds a hash of
        the tables and loads only into a trainer over the same tables."""
        D = _lib.as_size(D, "D", positive=True)
        d = _lib.as_size(d, "d", positive=True)
        # copies only where needed to get C-contiguous, aligned arrays of the C types
        B = np.require(np.asarray(B).reshape(-1), np.float32, ("C", "A"))
        Pi = np.require(np.asarray(Pi).reshape(-1), np.int64, ("C", "A"))
        G = np.require(np.asarray(G).reshape(-1), np.float32, ("C", "A"))
        if not len(B) == len(Pi) == len(G):
            raise ValueError(f"B, Pi and G must have the same length, got {len(B)}, "
                             f"{len(Pi)}, {len(G)}")
        out = ctypes.c_void_p()
        _lib.check(_lib.lib().intdim_proj_create_fastfood_tables(
            ctypes.byref(out), D, d, len(B), B.ctypes.data, Pi.ctypes.data,
            G.ctypes.data), "intdim_proj_create_fastfood_tables")
        self = cls.__new__(cls)
        self._users = 0
        self._adopt(out.value, threads, kernel)
        return self

    def fastfood_tables(self):
        """(B, Pi, G) of a seeded single-block Fastfood projection as numpy arrays (float32,
        int64, float32; L = nextpow2(D) entries each): what a PyTorch reference needs to run
        the very projection this seed denotes."""
        L = 1
        while L < self.D:
            L *= 2
        B = np.empty(L, np.float32)
        Pi = np.empty(L, np.int64)
        G = np.empty(L, np.float32)
        _lib.check(_lib.lib().intdim_proj_fastfood_tables(self._h, B.ctypes.data, Pi.ctypes.data,
                                                          G.ctypes.data, L))
        return B, Pi, G

    @classmethod
    def from_checkpoint(cls, path):
        """The projection a trainer checkpoint was trained with."""
        out = ctypes.c_void_p()
        _lib.check(_lib.lib().intdim_checkpoint_proj(ctypes.byref(out), _lib.path_arg(path)))
        self = cls.__new__(cls)
        self._users = 0
        self._own(out.value)
        self._cache_sizes()
        return self

    def _cache_sizes(self):
        lib = _lib.lib()
        self._D = int(lib.intdim_proj_D(self._h))
        self._d = int(lib.intdim_proj_d(self._h))
        self._n_scales = int(lib.intdim_proj_n_scales(self._h))

    def close(self):
        """Free the projection (idempotent). RuntimeError while a Trainer still uses it or
        a call on it is in progress."""
        if self._users > 0 and not self.closed:
            raise RuntimeError(f"Projection is still used by {self._users} open Trainer(s); "
                               "close them first")
        super().close()

    # ---- description --------------------------------------------------------------
    @property
    def D(self):
        self._h  # noqa: B018 - ValueError once closed, like every other member
        return self._D

    @property
    def d(self):
        """Trainable length, SAID scales included."""
        self._h  # noqa: B018
        return self._d

    @property
    def n_scales(self):
        self._h  # noqa: B018
        return self._n_scales

    @property
    def n_groups(self):
        return int(_lib.lib().intdim_proj_n_groups(self._h))

    @property
    def kind(self):
        return _params.kind_name(_lib.lib().intdim_proj_kind_of(self._h))

    @property
    def seed(self):
        return int(_lib.lib().intdim_proj_seed(self._h))

    @property
    def nbytes(self):
        """Bytes of state the handle holds."""
        return int(_lib.lib().intdim_proj_bytes(self._h))

    @property
    def group_sizes(self):
        n = self.n_groups
        sizes = (ctypes.c_size_t * max(n, 1))()
        _lib.check(_lib.lib().intdim_proj_group_sizes(self._h, sizes, max(n, 1)))
        return [int(sizes[i]) for i in range(n)]

    def __repr__(self):
        if self.closed:
            return "<Projection (closed)>"
        return f"<Projection {self.kind} D={self.D} d={self.d} seed={self.seed}>"

    # ---- parameters ---------------------------------------------------------------
    # get/set/bounds take the INTDIM_PROJ_* names in lower case, and also the constructor's
    # keywords for them
    _KEYWORD_NAMES = {"density": "sparse_density", "per_group": "fastfood_per_group",
                      "block": "fastfood_block"}

    @classmethod
    def _param(cls, name):
        if isinstance(name, str):
            if name.lower() in ("identity", "dense", "sparse", "fastfood"):
                # INTDIM_PROJ_DENSE etc. are kinds, not parameters: their values would name
                # some unrelated parameter
                raise ValueError(f"unknown parameter {name!r} (a projection kind, not a "
                                 "parameter)")
            name = cls._KEYWORD_NAMES.get(name.lower(), name)
        return _params.param_id("PROJ_", name)

    def set(self, name, value):
        """Runtime parameter: 'threads' (0 = all) or 'kernel' ('auto', 'portable', 'avx2',
        'avx512' or its number)."""
        pid = self._param(name)
        if self._calls:  # the C rule: no set while another call uses the handle
            raise RuntimeError("Projection.set while a call on this projection (apply, vjp, "
                               "or a Trainer's run or step) is in progress")
        _lib.check(_lib.lib().intdim_proj_set(self._h, pid,
                                              _params.param_value("PROJ_", name, value)))

    def get(self, name):
        return _params.get(_lib.lib().intdim_proj_get, self._h, self._param(name))

    @classmethod
    def bounds(cls, name):
        return _params.bounds(_lib.lib().intdim_proj_param_bounds, cls._param(name))

    # ---- maps -----------------------------------------------------------------------
    def init_theta(self):
        """Initial theta_d (zeros, SAID scales 1) as a new float32 array."""
        out = np.empty(self.d, dtype=np.float32)
        _lib.check(_lib.lib().intdim_proj_init_theta(self._h, out.ctypes.data))
        return out

    def apply(self, theta_d, out=None):
        """delta_D = P(theta_d). theta_d: float32 (d,); out: optional float32 (D,)."""
        theta_d = _lib.as_f32(theta_d, "theta_d", self.d)
        out = np.empty(self.D, np.float32) if out is None else _lib.as_f32(out, "out", self.D,
                                                                           writable=True)
        with self._in_call() as h:
            status = _lib.lib().intdim_proj_apply(h, theta_d.ctypes.data, out.ctypes.data)
        _lib.check(status, "intdim_proj_apply")
        return out

    def vjp(self, g_D, theta_d=None, out=None):
        """g_d = P^T g_D (exact adjoint); SAID projections also need theta_d for the
        scales' gradients."""
        g_D = _lib.as_f32(g_D, "g_D", self.D)
        if theta_d is None:
            if self.n_scales:
                raise ValueError("a SAID projection needs theta_d for vjp")
            theta_ptr = None
        else:
            theta_ptr = _lib.as_f32(theta_d, "theta_d", self.d).ctypes.data
        out = np.empty(self.d, np.float32) if out is None else _lib.as_f32(out, "out", self.d,
                                                                           writable=True)
        with self._in_call() as h:
            status = _lib.lib().intdim_proj_vjp(h, theta_ptr, g_D.ctypes.data, out.ctypes.data)
        _lib.check(status, "intdim_proj_vjp")
        return out
