"""Trainer with Python callbacks: training works, buffers are shared not copied, callback
exceptions (and Ctrl-C) stop the C loop and come back with their traceback."""
import decimal
import os
import signal
import traceback

import numpy as np
import pytest

import intdim

D = 64


class Quadratic:
    """loss = 0.5 ||theta - target||^2; records what the callbacks saw."""

    def __init__(self, seed=0):
        self.target = np.random.default_rng(seed).standard_normal(D).astype(np.float32)
        self.calls = 0
        self.seen = []

    def grad(self, step, theta, grad):
        self.calls += 1
        diff = theta - self.target
        grad[:] = diff
        return 0.5 * float(np.dot(diff, diff))

    def metric(self, theta):
        return -float(np.linalg.norm(theta - self.target))


def make(kind="identity", d=D, **params):
    proj = intdim.Projection(kind, D, d, seed=1)
    theta = np.zeros(D, np.float32)
    problem = Quadratic()
    trainer = intdim.Trainer(proj, theta, problem.grad, **params)
    return proj, theta, problem, trainer


def test_full_training_through_identity_converges():
    proj, theta, problem, t = make(optimizer="sgd", lr=0.5)
    with proj, t:
        first = t.step()
        for _ in range(30):
            last = t.step()
        assert last < 1e-6 * first
        t.sync()
        np.testing.assert_allclose(theta, problem.target, atol=1e-3)
        assert t.steps_done == 31 and problem.calls == 31


def test_subspace_training_lowers_the_loss_and_writes_host_buffer():
    proj, theta, problem, t = make("fastfood", d=8, optimizer="adam", lr=0.05)
    with proj, t:
        first = t.step()
        metric = t.run(100, eval_fn=problem.metric)
        assert t.step() < first
        assert metric > problem.metric(np.zeros(D, np.float32))
        t.sync()
        expected = proj.apply(t.theta_d)  # theta0 = 0: theta == P(theta_d)
        np.testing.assert_allclose(theta, expected, rtol=1e-5, atol=1e-6)


def test_callback_arrays_are_views_of_the_buffers():
    proj = intdim.Projection("dense", D, 4, seed=1)
    theta = np.zeros(D, np.float32)
    grad_buffer = np.zeros(D, np.float32)
    seen = {}

    def grad_fn(step, th, gr):
        seen["theta_shared"] = np.shares_memory(th, theta)
        seen["grad_shared"] = np.shares_memory(gr, grad_buffer)
        seen["theta_writable"] = th.flags.writeable
        seen["shape"] = (th.shape, gr.shape, th.dtype, gr.dtype)
        gr[:] = 1.0
        return 0.0

    with proj, intdim.Trainer(proj, theta, grad_fn, grad=grad_buffer) as t:
        t.step()
    assert seen["theta_shared"] and seen["grad_shared"]
    assert not seen["theta_writable"]
    assert seen["shape"] == ((D,), (D,), np.float32, np.float32)
    assert (grad_buffer == 1.0).all()  # written through the view, no copy back


def boom_at_step_3(step, theta, grad):
    if step == 3:
        raise ValueError("boom at step 3")
    grad[:] = theta - 1.0
    return 1.0


def test_exception_in_callback_is_reraised_with_traceback():
    proj = intdim.Projection("identity", D, D)
    theta = np.zeros(D, np.float32)
    with proj, intdim.Trainer(proj, theta, boom_at_step_3, lr=0.1) as t:
        for _ in range(3):
            t.step()
        before = t.theta_d
        with pytest.raises(ValueError, match="boom at step 3") as info:
            t.run(10)
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert "boom_at_step_3" in frames and "run" in frames
        # the failed step left the trainer as it was (header contract)
        assert t.steps_done == 3
        assert np.array_equal(t.theta_d, before)


def test_eval_callback_exception_and_bad_return():
    proj, theta, problem, t = make()
    with proj, t:
        with pytest.raises(ZeroDivisionError):
            t.evaluate(lambda th: 1 / 0)
        with pytest.raises(TypeError, match="returned None"):
            t.evaluate(lambda th: None)
        assert t.evaluate(problem.metric) == pytest.approx(problem.metric(theta))


def test_keyboard_interrupt_inside_callback_stops_cleanly(sigint_raises):
    proj = intdim.Projection("identity", D, D)
    theta = np.zeros(D, np.float32)
    calls = []

    def grad_fn(step, th, gr):
        calls.append(step)
        if len(calls) == 6:  # the sixth call, step 5
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while C is running the loop
        gr[:] = th - 1.0
        return float(np.sum((th - 1.0) ** 2))

    with proj, intdim.Trainer(proj, theta, grad_fn, lr=0.1) as t:
        with pytest.raises(KeyboardInterrupt):
            t.run(1000)
        assert max(calls) <= 6  # stopped at once, not after 1000 steps
        assert t.steps_done == 5
        t.run(2)  # still usable
        assert t.steps_done == 7


def test_progress_can_stop_the_run():
    proj, theta, problem, t = make(lr=0.01)
    with proj, t:
        with pytest.raises(intdim.IntdimError) as info:
            # progress gets the number of steps done so far
            t.run(100, progress=lambda steps, loss, metric: steps >= 10)
        assert info.value.status == intdim.constant("EINTERRUPTED")
        assert t.steps_done == 10


def test_nonfinite_loss_is_reported():
    proj = intdim.Projection("identity", D, D)
    theta = np.zeros(D, np.float32)

    def nan_grad(step, th, gr):
        gr[:] = 0
        return float("nan")

    with proj, intdim.Trainer(proj, theta, nan_grad) as t:
        with pytest.raises(intdim.IntdimError) as info:
            t.step()
        assert info.value.status == intdim.constant("ENONFINITE")
        assert t.steps_done == 0


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "ckpt.bin"
    proj, theta, problem, t = make("sparse", d=10, lr=0.05)
    with proj, t:
        t.run(5)
        t.save(path)
        saved = t.theta_d
        t.run(5)
        assert not np.array_equal(t.theta_d, saved)
        t.load(path)
        assert t.steps_done == 5
        assert np.array_equal(t.theta_d, saved)
        with intdim.Projection.from_checkpoint(path) as again:
            assert (again.kind, again.D, again.d, again.seed) == ("sparse", D, 10, 1)
            x = np.arange(10, dtype=np.float32)
            assert np.array_equal(again.apply(x), proj.apply(x))
    with pytest.raises(intdim.IntdimError):
        intdim.Projection.from_checkpoint(tmp_path / "missing.bin")


def test_checkpoint_paths_as_str_bytes_and_pathlike(tmp_path):
    # every path argument goes through os.fsencode: a bytes path is the file it names (not
    # the text "b'...'"), and anything else is a TypeError before C sees it
    proj, theta, problem, t = make("sparse", d=10, lr=0.05)
    with proj, t:
        t.run(2)
        for path in (str(tmp_path / "a.bin"), bytes(tmp_path / "b.bin"), tmp_path / "c.bin"):
            t.save(path)
            assert os.path.exists(os.fsdecode(path))
            t.load(path)
            with intdim.Projection.from_checkpoint(path) as again:
                assert again.d == 10
        with pytest.raises(TypeError):
            t.save(42)


def test_checkpoint_of_projection_from_tables(tmp_path):
    # Imported tables have no seed: the checkpoint resumes over the same tables only.
    path = tmp_path / "tables.bin"
    with intdim.Projection("fastfood", D, 8, seed=3) as seeded:
        B, Pi, G = seeded.fastfood_tables()
    proj = intdim.Projection.from_fastfood_tables(D, 8, B, Pi, G)
    problem = Quadratic()
    theta = np.zeros(D, np.float32)
    with proj, intdim.Trainer(proj, theta, problem.grad, lr=0.05) as t:
        t.run(4)
        t.save(path)
        saved = t.theta_d
    again = intdim.Projection.from_fastfood_tables(D, 8, B, Pi, G)
    with again, intdim.Trainer(again, np.zeros(D, np.float32), problem.grad) as t2:
        t2.load(path)
        assert t2.steps_done == 4 and np.array_equal(t2.theta_d, saved)
    G[0] *= 2
    other = intdim.Projection.from_fastfood_tables(D, 8, B, Pi, G)
    with other, intdim.Trainer(other, np.zeros(D, np.float32), problem.grad) as t3:
        with pytest.raises(intdim.IntdimError) as info:
            t3.load(path)
        assert info.value.status == intdim.constant("EMISMATCH")
    with pytest.raises(intdim.IntdimError) as info:
        intdim.Projection.from_checkpoint(path)
    assert info.value.status == intdim.constant("EUNSUPPORTED")


def test_theta_d_and_parameters():
    proj, theta, problem, t = make("dense", d=6, optimizer="adamw", schedule="cosine",
                                   total_steps=100, lr=0.02)
    with proj, t:
        assert t.get("optimizer") == intdim.constant("OPT_ADAMW")
        assert t.get("lr") == pytest.approx(0.02)
        values = np.arange(6, dtype=np.float32)
        t.theta_d = values
        assert np.array_equal(t.theta_d, values)
        with pytest.raises(TypeError):
            t.theta_d = np.arange(6, dtype=np.float64)
        with pytest.raises(ValueError):
            t.theta_d = np.arange(7, dtype=np.float32)
        with pytest.raises(intdim.IntdimError):
            t.set("lr", -1.0)
        t.reset()
        assert t.steps_done == 0 and not t.theta_d.any()


def test_bad_host_arrays_are_refused():
    with intdim.Projection("dense", D, 4) as p:
        ok = Quadratic().grad
        with pytest.raises(TypeError):
            intdim.Trainer(p, np.zeros(D, np.float64), ok)
        with pytest.raises(ValueError):
            intdim.Trainer(p, np.zeros(D + 1, np.float32), ok)
        ro = np.zeros(D, np.float32)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="writable"):
            intdim.Trainer(p, ro, ok)
        with pytest.raises(TypeError, match="callable"):
            intdim.Trainer(p, np.zeros(D, np.float32), None)


def test_projection_stays_open_while_a_trainer_uses_it():
    proj, theta, problem, t = make()
    with pytest.raises(RuntimeError, match="Trainer"):
        proj.close()
    t.close()
    proj.close()
    assert proj.closed


def test_garbage_collected_trainer_releases_its_projection():
    import gc
    proj, theta, problem, t = make()
    finalizer = t._finalizer
    del t
    gc.collect()
    assert not finalizer.alive
    proj.close()  # no longer refused
    assert proj.closed


class Host:
    """A host that stores its trainer and trains with a bound method: the trainer's
    callback refers back to the trainer (trainer -> trampoline -> grad -> host -> trainer)."""

    def __init__(self, proj):
        self.problem = Quadratic()
        self.theta = np.zeros(D, np.float32)
        self.trainer = intdim.Trainer(proj, self.theta, self.grad, lr=0.1)

    def grad(self, step, theta, grad):
        return self.problem.grad(step, theta, grad)


def test_trainer_whose_callback_refers_back_to_it_is_collected():
    import gc
    import weakref
    proj = intdim.Projection("dense", D, 8, seed=1)
    host = Host(proj)
    host.trainer.step()
    assert proj._users == 1
    trainer_ref, finalizer = weakref.ref(host.trainer), host.trainer._finalizer
    del host
    gc.collect()
    assert trainer_ref() is None  # the finalizer registry no longer keeps it alive
    assert not finalizer.alive    # and its C handle was destroyed
    assert proj._users == 0
    proj.close()  # used to raise "still used by 1 open Trainer(s)"
    assert proj.closed


def test_integer_arguments_of_the_trainer():
    proj, theta, problem, t = make()
    with proj, t:
        with pytest.raises(ValueError, match="n_steps"):
            t.run(-1)
        with pytest.raises(ValueError, match="n_steps"):
            t.run(2**64)  # used to wrap to 0 steps
        with pytest.raises(TypeError, match="n_steps"):
            t.run(2.5)
        t.run(np.int64(3))
        assert t.steps_done == 3


def test_misaligned_host_arrays_are_refused():
    def odd(n):
        return np.frombuffer(bytearray(4 * n + 1), np.float32, count=n, offset=1)

    with intdim.Projection("dense", D, 4) as p:
        ok = Quadratic().grad
        for kw in ({}, {"theta0": odd(D)}, {"grad": odd(D)}):
            theta = odd(D) if not kw else np.zeros(D, np.float32)
            with pytest.raises(ValueError, match="must be aligned"):
                intdim.Trainer(p, theta, ok, **kw)
        with intdim.Trainer(p, np.zeros(D, np.float32), ok) as t:
            with pytest.raises(ValueError, match="theta_d must be aligned"):
                t.theta_d = odd(4)
        assert p._users == 0


def test_callback_results_must_be_real_numbers():
    # float() would have parsed "1.0"; only real numbers (and 0-d arrays of them) pass, and
    # a refused value surfaces like any callback exception: TypeError from the call that
    # started the loop, the step rolled back.
    proj = intdim.Projection("identity", D, D)
    theta = np.zeros(D, np.float32)
    result = {"loss": 1.0}

    def grad_fn(step, th, gr):
        gr[:] = th - 1.0
        return result["loss"]

    class OwnFloat:  # what a 0-d JAX, CuPy or TensorFlow array looks like to us
        def __float__(self):
            return 0.25

    refused = ["1.0", b"1.0", 1 + 0j, np.complex64(1), np.array([1.0]), np.array("1.0"),
               np.array(True), np.bool_(True), True, [1.0], object()]
    accepted = [1, 1.0, np.float32(0.5), np.float64(0.5), np.int64(2), np.uint8(3),
                np.array(0.5), np.array(0.5, np.float32), np.array(3, np.int32),
                decimal.Decimal("0.75"), OwnFloat()]
    with proj, intdim.Trainer(proj, theta, grad_fn, lr=0.1) as t:
        for value in refused:
            result["loss"] = value
            with pytest.raises(TypeError, match="grad_fn returned .*must return a real"):
                t.step()
            with pytest.raises(TypeError, match="eval_fn returned .*must return a real"):
                t.evaluate(lambda th: value)
            with pytest.raises(TypeError, match="grad_fn returned"):
                t.run(3)
            assert t.steps_done == 0
        for value in accepted:
            result["loss"] = value
            assert t.step() == float(value)
            assert t.evaluate(lambda th: value) == float(value)
        assert t.steps_done == len(accepted)


def test_run_leaves_the_host_buffer_in_sync():
    # After Trainer.run(n) (with or without evaluations) the host buffer holds
    # theta0 + P(theta_d) for the trainer's current theta_d, bit for bit, without sync():
    # the docs' PyTorch example uses the model right after t.run(500).
    theta0 = np.random.default_rng(5).standard_normal(D).astype(np.float32)
    for kind, d in (("fastfood", 8), ("dense", 5), ("identity", D)):
        proj = intdim.Projection(kind, D, d, seed=3)
        theta = theta0.copy()
        problem = Quadratic()
        with proj, intdim.Trainer(proj, theta, problem.grad, lr=0.05) as t:
            for n, eval_fn in ((7, None), (5, problem.metric), (1, None)):
                t.run(n, eval_fn=eval_fn)
                expected = (theta0 + proj.apply(t.theta_d)).astype(np.float32)
                assert np.array_equal(theta, expected), (kind, n)
            # so does a run stopped by its progress callback, or by a callback's exception
            with pytest.raises(intdim.IntdimError):
                t.run(10, progress=lambda steps, loss, metric: True)
            assert t.steps_done == 14
            assert np.array_equal(theta, theta0 + proj.apply(t.theta_d)), kind
            with pytest.raises(ZeroDivisionError):
                t.run(10, eval_fn=lambda th: 1 / 0)
            assert t.steps_done == 24
            assert np.array_equal(theta, theta0 + proj.apply(t.theta_d)), kind


def test_ctrl_c_while_the_library_runs_raises_keyboard_interrupt(sigint_raises):
    """A real Ctrl-C arrives from outside at any moment, most often while C (not Python)
    runs: it must surface as KeyboardInterrupt, never as a garbage callback status, and
    leave the trainer usable."""
    import threading
    D_big = 1 << 16
    proj = intdim.Projection("fastfood", D_big, 500, seed=3)
    theta = np.zeros(D_big, np.float32)

    def grad_fn(step, th, gr):
        gr[:] = th - 0.5
        return 1.0

    with proj, intdim.Trainer(proj, theta, grad_fn, lr=1e-3) as t:
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                t.run(10**7)  # minutes of work: only the interrupt ends it
        finally:
            timer.cancel()
        done = t.steps_done
        assert 0 < done < 10**7
        t.run(3)
        assert t.steps_done == done + 3


def test_close_during_a_call_is_refused():
    """Closing the trainer or its projection, or setting the projection's parameters,
    from inside one of the trainer's own callbacks would free or change what C is using."""
    proj, theta, problem, t = make()
    attempts = []

    def progress(step, loss, metric):
        if step == 3:
            for action in (t.close, proj.close, lambda: proj.set("threads", 1)):
                with pytest.raises(RuntimeError):
                    action()
                attempts.append(action)
        return False

    with proj, t:
        t.run(5, progress=progress)
        assert len(attempts) == 3 and not t.closed and not proj.closed
        assert t.steps_done == 5
    assert t.closed and proj.closed  # once the call returned, close works


def test_a_refused_parameter_releases_the_projection():
    proj = intdim.Projection("identity", D, D)
    theta = np.zeros(D, np.float32)
    with pytest.raises(intdim.IntdimError) as err:
        intdim.Trainer(proj, theta, Quadratic().grad, lr=-1.0)
    assert err.value is not None  # the exception (and its traceback) still held
    proj.close()  # not "still used by 1 open Trainer"
    assert proj.closed


def test_callbacks_that_are_not_callable_are_refused_before_any_step():
    proj, theta, problem, t = make()
    with proj, t:
        for kwargs in ({"eval_fn": "acc"}, {"progress": True}):
            with pytest.raises(TypeError, match="must be callable"):
                t.run(100, **kwargs)
        assert t.steps_done == 0 and problem.calls == 0


def test_sizes_of_a_closed_projection_raise():
    proj = intdim.Projection("sparse", 100, 10, seed=1)
    proj.close()
    for name in ("D", "d", "n_scales", "n_groups", "kind"):
        with pytest.raises(ValueError, match="closed"):
            getattr(proj, name)


def test_interrupt_while_entering_a_call_leaves_nothing_in_use(monkeypatch):
    """Ctrl-C can land while a call is being set up (before the SIGINT handler is swapped
    in): what was already entered is left again, so close() and set() still work."""
    from intdim import _callbacks
    proj, theta, problem, t = make()

    def interrupted_enter(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(_callbacks._RecordInterrupts, "__enter__", interrupted_enter)
        with pytest.raises(KeyboardInterrupt):
            t.step()
    assert t._calls == 0 and proj._calls == 0
    proj.set("threads", 1)
    t.close()
    proj.close()
