"""Projection through numpy: linearity, exact adjoint, identity round trip, SAID, seeds,
ownership, and arrays that must be refused before they reach C."""
import gc

import numpy as np
import pytest

import intdim

KINDS = ["dense", "sparse", "fastfood"]


def rand(n, seed):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_adjoint_identity(kind):
    # <P x, g> == <x, P^T g> for random x, g: the library's vjp is the exact adjoint.
    D, d = 1000, 37
    with intdim.Projection(kind, D, d, seed=5) as p:
        for trial in range(3):
            x, g = rand(d, 10 + trial), rand(D, 20 + trial)
            lhs = np.dot(p.apply(x).astype(np.float64), g.astype(np.float64))
            rhs = np.dot(x.astype(np.float64), p.vjp(g).astype(np.float64))
            assert lhs == pytest.approx(rhs, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_apply_is_linear_and_deterministic(kind):
    D, d = 513, 20
    with intdim.Projection(kind, D, d, seed=3) as p, \
            intdim.Projection(kind, D, d, seed=3) as q, \
            intdim.Projection(kind, D, d, seed=4) as other:
        x, y = rand(d, 1), rand(d, 2)
        combined = p.apply((2 * x - 3 * y).astype(np.float32))
        np.testing.assert_allclose(combined, 2 * p.apply(x) - 3 * p.apply(y),
                                   rtol=1e-4, atol=1e-5)
        assert np.array_equal(p.apply(x), q.apply(x))  # same seed: bit for bit
        assert not np.array_equal(p.apply(x), other.apply(x))


@pytest.mark.parametrize("kind", KINDS)
def test_columns_have_about_unit_norm(kind):
    D, d = 4096, 16
    with intdim.Projection(kind, D, d, seed=1) as p:
        for j in range(0, d, 5):
            e = np.zeros(d, np.float32)
            e[j] = 1
            assert np.linalg.norm(p.apply(e)) == pytest.approx(1.0, rel=0.05)


def test_identity_round_trip():
    D = 300
    with intdim.Projection("identity", D, D) as p:
        x = rand(D, 7)
        assert np.array_equal(p.apply(x), x)
        assert np.array_equal(p.vjp(x), x)


def test_out_parameter_is_written_in_place():
    with intdim.Projection("fastfood", 100, 10, seed=2) as p:
        x = rand(10, 1)
        out = np.full(100, np.nan, np.float32)
        assert p.apply(x, out=out) is out
        assert np.array_equal(out, p.apply(x))
        g_out = np.full(10, np.nan, np.float32)
        assert p.vjp(out, out=g_out) is g_out
        assert np.array_equal(g_out, p.vjp(out))


@pytest.mark.parametrize("kind", ["identity", "dense", "sparse", "fastfood"])
def test_out_overlapping_the_input_is_refused(kind):
    # in place, dense and sparse gave wrong numbers and identity a memcpy over itself
    D = d = 64
    with intdim.Projection(kind, D, d, seed=3) as p:
        buf = rand(D + 4, 5)
        with pytest.raises(intdim.IntdimError, match="delta_D overlaps theta_d"):
            p.apply(buf[:d], out=buf[:D])
        with pytest.raises(intdim.IntdimError, match="delta_D overlaps theta_d"):
            p.apply(buf[4:4 + d], out=buf[:D])
        with pytest.raises(intdim.IntdimError, match="g_d overlaps g_D"):
            p.vjp(buf[:D], out=buf[4:4 + d])
        expect = p.apply(buf[:d].copy())
        assert np.array_equal(p.apply(buf[:d], out=np.empty(D, np.float32)), expect)


def test_description():
    with intdim.Projection("sparse", 1000, 50, seed=11) as p:
        assert (p.D, p.d, p.kind, p.seed, p.n_scales) == (1000, 50, "sparse", 11, 0)
        assert p.nbytes > 0
        assert "sparse" in repr(p)


def test_said_scales_and_adjoint():
    groups = [60, 40, 100]
    D, d = sum(groups), 23
    with intdim.Projection("fastfood", D, d, seed=9, groups=groups, said=True) as p:
        assert p.n_scales == len(groups) and p.n_groups == len(groups)
        assert p.group_sizes == groups
        theta_d = p.init_theta()
        assert np.array_equal(theta_d[-3:], np.ones(3, np.float32))
        assert not theta_d[:-3].any()
        assert not p.apply(theta_d).any()  # training starts at theta0
        with pytest.raises(ValueError, match="theta_d"):
            p.vjp(rand(D, 1))
        # SAID is nonlinear in the scales; check the vjp against finite differences of
        # <apply(theta), g> in float64 terms.
        theta = rand(d, 4)
        g = rand(D, 5)
        grad = p.vjp(g, theta_d=theta).astype(np.float64)
        eps = 1e-2
        for i in [0, 5, d - 3, d - 1]:
            plus, minus = theta.copy(), theta.copy()
            plus[i] += eps
            minus[i] -= eps
            fd = (np.dot(p.apply(plus), g) - np.dot(p.apply(minus), g)) / (2 * eps)
            assert grad[i] == pytest.approx(fd, rel=2e-2, abs=2e-3)


BAD_INPUTS = [
    ([0.0] * 10, TypeError, "numpy"),
    (np.zeros(10, np.float64), TypeError, "float32"),
    (np.zeros(10, np.int32), TypeError, "float32"),
    (np.zeros((2, 5), np.float32), ValueError, "1-D"),
    (np.zeros(11, np.float32), ValueError, "10 elements"),
    (np.zeros(20, np.float32)[::2], ValueError, "contiguous"),
]


@pytest.mark.parametrize("bad,exc,match", BAD_INPUTS)
def test_bad_arrays_are_refused(bad, exc, match):
    with intdim.Projection("dense", 50, 10, seed=1) as p:
        with pytest.raises(exc, match=match):
            p.apply(bad)
        with pytest.raises(exc):
            p.vjp(np.zeros(50, np.float64) if exc is TypeError else np.zeros(49, np.float32))


def test_read_only_out_is_refused():
    with intdim.Projection("dense", 50, 10, seed=1) as p:
        out = np.zeros(50, np.float32)
        out.flags.writeable = False
        with pytest.raises(ValueError, match="writable"):
            p.apply(np.zeros(10, np.float32), out=out)


def test_closed_handle_raises_and_close_is_idempotent():
    p = intdim.Projection("dense", 50, 10)
    p.close()
    p.close()
    assert p.closed
    with pytest.raises(ValueError, match="closed"):
        p.apply(np.zeros(10, np.float32))


def test_garbage_collection_frees_the_handle():
    p = intdim.Projection("dense", 50, 10)
    finalizer = p._finalizer
    del p
    gc.collect()
    assert not finalizer.alive


def test_runtime_parameters():
    with intdim.Projection("fastfood", 1 << 12, 100, seed=1) as p:
        x = rand(100, 1)
        ref = p.apply(x)
        p.set("threads", 1)
        assert p.get("threads") == 1
        p.set("kernel", "portable")
        assert np.array_equal(p.apply(x), ref)  # same bits whatever the kernel
        lo, hi = intdim.Projection.bounds("threads")
        assert lo <= 1 <= hi
        with pytest.raises(intdim.IntdimError):
            p.set("threads", hi + 1)


def test_kernel_reads_back_the_kernel_in_use():
    # docs/python.md: "auto" (0) is resolved to the best kernel available; get("kernel")
    # reports the kernel in use, never 0
    in_use = {intdim.constant(k) for k in ("KERNEL_PORTABLE", "KERNEL_AVX2", "KERNEL_AVX512")}
    with intdim.Projection("fastfood", 1 << 10, 10, seed=1) as p:
        best = p.get("kernel")
        assert best in in_use
        p.set("kernel", "portable")
        assert p.get("kernel") == intdim.constant("KERNEL_PORTABLE")
        p.set("kernel", "auto")
        assert p.get("kernel") == best
    with intdim.Projection("fastfood", 1 << 10, 10, seed=1, kernel="auto") as p:
        assert p.get("kernel") == best


@pytest.mark.parametrize("kind", KINDS)
def test_adjoint_identity_with_groups(kind):
    # per-group Fastfood blocks (ignored by other kinds) and SAID over every kind
    groups = [300, 200, 12]
    D, d = sum(groups), 40
    options = {"per_group": kind == "fastfood"}
    with intdim.Projection(kind, D, d, seed=2, groups=groups, **options) as p:
        x, g = rand(d, 1), rand(D, 2)
        lhs = np.dot(p.apply(x).astype(np.float64), g)
        assert lhs == pytest.approx(np.dot(x.astype(np.float64), p.vjp(g)), rel=1e-4, abs=1e-4)
    with intdim.Projection(kind, D, d, seed=2, groups=groups, said=True) as p:
        theta = rand(d, 3)
        # SAID is linear in theta_{d-m} at fixed scales: the adjoint identity holds there
        lin = theta.copy()
        lin[:-3] = 0
        x = rand(d, 4)
        x[-3:] = theta[-3:]
        delta = p.apply(x) - p.apply(lin)
        grad = p.vjp(g, theta_d=x)
        lhs = np.dot(delta.astype(np.float64), g)
        rhs = np.dot(x[:-3].astype(np.float64), grad[:-3])
        assert lhs == pytest.approx(rhs, rel=1e-3, abs=1e-3)


def test_get_and_bounds_take_the_constructor_keywords():
    # the keyword a projection was made with reads it back: density, per_group, block
    with intdim.Projection("sparse", 400, 20, seed=1, density=0.25) as p:
        assert p.get("density") == p.get("sparse_density") == 0.25
    with intdim.Projection("fastfood", 300, 20, seed=1, groups=[100, 200],
                           per_group=True) as p:
        assert p.get("per_group") == p.get("fastfood_per_group") == 1
        assert p.get("block") == 0
    assert intdim.Projection.bounds("block") == intdim.Projection.bounds("fastfood_block")
    with pytest.raises(ValueError, match="unknown parameter 'blocks'"):
        intdim.Projection.bounds("blocks")
    # kind names are constants of the same prefix, but not parameters
    with intdim.Projection("dense", 40, 4, seed=1) as p:
        for kind in ("dense", "SPARSE", "identity", "fastfood"):
            with pytest.raises(ValueError, match="a projection kind"):
                p.get(kind)
            with pytest.raises(ValueError, match="a projection kind"):
                intdim.Projection.bounds(kind)


def test_fastfood_blocks_are_per_group_chunks():
    # block=B is per-group Fastfood over chunks of B rows, bit for bit, and survives
    # SAID's own groups being different from the blocks
    D, d, B = 1300, 70, 256
    chunks = [B] * (D // B) + [D % B]
    x, g = rand(d, 5), rand(D, 6)
    with intdim.Projection("fastfood", D, d, seed=4, block=B) as blocked, \
            intdim.Projection("fastfood", D, d, seed=4, groups=chunks, per_group=True) as grouped:
        assert blocked.get("fastfood_block") == B
        assert np.array_equal(blocked.apply(x), grouped.apply(x))
        assert np.array_equal(blocked.vjp(g), grouped.vjp(g))
    with intdim.Projection("fastfood", D, d, seed=4, groups=[1000, 300], said=True,
                           block=B) as p:
        assert p.n_scales == 2
        assert np.all(np.isfinite(p.apply(p.init_theta())))
    with pytest.raises(intdim.IntdimError, match="power of two"):
        intdim.Projection("fastfood", D, d, block=100)
    with pytest.raises(intdim.IntdimError, match="needs kind FASTFOOD"):
        intdim.Projection("sparse", D, d, block=256)


def test_fastfood_tables_round_trip_and_refusals():
    # Exported tables imported again give the same bits; bad tables and other kinds raise.
    D, d = 1500, 40
    with intdim.Projection("fastfood", D, d, seed=9) as p:
        B, Pi, G = p.fastfood_tables()
        assert B.dtype == np.float32 and Pi.dtype == np.int64 and G.dtype == np.float32
        assert len(B) == len(Pi) == len(G) == 2048
        assert set(np.unique(B)) <= {-1.0, 1.0}
        assert np.array_equal(np.sort(Pi), np.arange(2048))
        with intdim.Projection.from_fastfood_tables(D, d, B, Pi, G) as q:
            x, g = rand(d, 1), rand(D, 2)
            assert np.array_equal(p.apply(x), q.apply(x))
            assert np.array_equal(p.vjp(g), q.vjp(g))
            with pytest.raises(intdim.IntdimError):
                q.fastfood_tables()  # no seed to export
        bad = Pi.copy()
        bad[5] = bad[6]
        with pytest.raises(intdim.IntdimError, match="permutation"):
            intdim.Projection.from_fastfood_tables(D, d, B, bad, G)
        with pytest.raises(intdim.IntdimError, match="nextpow2"):
            intdim.Projection.from_fastfood_tables(D, d, B[:1024], Pi[:1024], G[:1024])
        with pytest.raises(ValueError):
            intdim.Projection.from_fastfood_tables(D, d, B, Pi[:-1], G)
    with intdim.Projection("dense", 100, 4, seed=1) as dense:
        with pytest.raises(intdim.IntdimError):
            dense.fastfood_tables()


def misaligned(n, values=None):
    """A C-contiguous, writable float32 array of n elements at an odd address (what
    numpy.frombuffer gives at a byte offset that is not a multiple of 4)."""
    arr = np.frombuffer(bytearray(4 * n + 1), np.float32, count=n, offset=1)
    assert arr.flags.c_contiguous and arr.flags.writeable and not arr.flags.aligned
    if values is not None:
        arr[:] = values
    return arr


def test_misaligned_arrays_are_refused():
    # A misaligned float32 view used to reach C (and crashed the Fastfood streaming path at
    # D = 2^22); it is refused like a strided one, whichever argument it is.
    D, d = 1000, 20
    with intdim.Projection("fastfood", D, d, seed=3) as p:
        x, g = rand(d, 1), rand(D, 2)
        with pytest.raises(ValueError, match="theta_d must be aligned"):
            p.apply(misaligned(d, x))
        with pytest.raises(ValueError, match="out must be aligned"):
            p.apply(x, out=misaligned(D))
        with pytest.raises(ValueError, match="g_D must be aligned"):
            p.vjp(misaligned(D, g))
        with pytest.raises(ValueError, match="out must be aligned"):
            p.vjp(g, out=misaligned(d))
        # an aligned copy of the same values is accepted and gives the same result
        assert np.array_equal(p.apply(np.array(misaligned(d, x))), p.apply(x))


def test_misaligned_fastfood_tables_are_copied_not_passed(monkeypatch):
    # from_fastfood_tables copies its inputs where needed: misaligned tables reach C as
    # aligned copies (seen by a spy on the C call) and give the same projection.
    from intdim import _lib
    real = _lib.lib().intdim_proj_create_fastfood_tables
    seen = []

    def spy(out, D, d, L, B, Pi, G):
        seen.append((B % 4, Pi % 8, G % 4))
        return real(out, D, d, L, B, Pi, G)

    monkeypatch.setattr(_lib.lib(), "intdim_proj_create_fastfood_tables", spy)
    D, d = 1500, 40
    with intdim.Projection("fastfood", D, d, seed=9) as p:
        B, Pi, G = p.fastfood_tables()
        raw = bytearray(8 * len(Pi) + 1)
        Pi_odd = np.frombuffer(raw, np.int64, count=len(Pi), offset=1)
        Pi_odd[:] = Pi
        assert not Pi_odd.flags.aligned
        with intdim.Projection.from_fastfood_tables(D, d, misaligned(len(B), B), Pi_odd,
                                                    misaligned(len(G), G)) as q:
            x = rand(d, 1)
            assert np.array_equal(p.apply(x), q.apply(x))
    assert seen == [(0, 0, 0)]


@pytest.mark.parametrize("D,d,seed", [
    (2**64 + 10, 5, 0),      # used to wrap to D = 10
    (-1, 5, 0),              # used to become D = 2^64 - 1 ("exceeds the limit 2^40")
    (50, -3, 0),
    (0, 5, 0),               # C needs D > 0 and d > 0
    (50, 0, 0),
    (50, 5, -1),             # used to become seed 2^64 - 1
    (50, 5, 2**64),          # used to become seed 0
])
def test_out_of_range_integers_are_refused(D, d, seed):
    with pytest.raises(ValueError, match=r"must be an integer in \["):
        intdim.Projection("dense", D, d, seed=seed)


def test_integer_arguments_accept_numpy_integers_and_refuse_non_integers():
    dense = intdim.constant("PROJ_DENSE")
    with intdim.Projection(np.int64(dense), np.int64(50), np.uint32(5),
                           seed=np.uint64(2**64 - 1)) as p:
        assert (p.kind, p.D, p.d, p.seed) == ("dense", 50, 5, 2**64 - 1)
        p.set(np.int64(intdim.constant("PROJ_THREADS")), 1)
        assert p.get("threads") == 1
    with intdim.Projection("dense", 50, 5, seed=2**64 - 1) as p:
        assert p.seed == 2**64 - 1  # the largest seed is kept, not refused
    with pytest.raises(TypeError, match="D must be an integer"):
        intdim.Projection("dense", 50.0, 5)
    with pytest.raises(TypeError, match="seed must be an integer"):
        intdim.Projection("dense", 50, 5, seed="1")
    with pytest.raises(ValueError, match=r"groups\[1\]"):
        intdim.Projection("fastfood", 50, 5, groups=[60, -10], per_group=True)
    with intdim.Projection("fastfood", 50, 5, groups=np.array([20, 30]), per_group=True) as p:
        assert p.group_sizes == [20, 30]
