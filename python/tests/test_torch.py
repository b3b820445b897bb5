"""The PyTorch host: parameters view one buffer the library writes, gradients land in the
buffer it reads, SAID groups from named parameters, and a tiny model trained in a subspace."""
import numpy as np
import pytest
import torch  # python3-torch is a test dependency (scripts/install-deps.sh)

import intdim
from intdim.torch_host import ReferenceFastfood, TorchHost, accuracy


def tiny_problem(seed=0, n=256):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen)
    teacher = torch.randn(4, 3, generator=gen)
    y = (x @ teacher).argmax(dim=1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 3))

    def batches(step):
        start = (step * 32) % n
        return x[start:start + 32], y[start:start + 32]

    host = TorchHost(model, torch.nn.functional.cross_entropy, batches,
                     eval_fn=lambda m: accuracy(m, x, y))
    return host, model, x, y


def full_loss(host, x, y):
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(host.module(x), y))


def test_parameters_view_the_flat_buffer():
    host, model, x, y = tiny_problem()
    assert host.D == sum(p.numel() for p in model.parameters()) == 4 * 16 + 16 + 16 * 3 + 3
    start, end = host.theta.ctypes.data, host.theta.ctypes.data + host.theta.nbytes
    for p in model.parameters():
        assert start <= p.data_ptr() < end
    before = model(x[:5]).detach().clone()
    host.theta[:] = 0  # writing the buffer changes the model
    assert torch.all(model(x[:5]) == model[2].bias)
    host.restore_theta0()
    assert torch.equal(model(x[:5]), before)


def test_groups_from_named_parameters():
    host, model, _, _ = tiny_problem()
    assert host.group_sizes == [4 * 16 + 16, 16 * 3 + 3]
    assert host.group_names == ["0", "2"]
    host.set_groups("tensor")
    assert host.group_sizes == [64, 16, 48, 3]
    with pytest.raises(ValueError):
        host.set_groups("module")


def test_gradient_callback_matches_autograd_without_copies():
    host, model, x, y = tiny_problem()
    grad = np.zeros(host.D, np.float32)
    loss = host.grad_fn(0, host.theta, grad)
    model.zero_grad(set_to_none=True)
    ref_loss = torch.nn.functional.cross_entropy(model(x[:32]), y[:32])
    ref_loss.backward()
    ref = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
    assert loss == pytest.approx(float(ref_loss))
    np.testing.assert_allclose(grad, ref, rtol=1e-5, atol=1e-7)


def test_tiny_model_trained_in_a_subspace():
    host, model, x, y = tiny_problem()
    start_loss = full_loss(host, x, y)
    with host.trainer(d=30, kind="fastfood", seed=3, lr=0.05) as t:
        t.run(150)
        t.sync()
        assert full_loss(host, x, y) < 0.7 * start_loss
        assert host.grad_copies == 0  # backward accumulated straight into the buffer
        # the module's parameters are theta0 + P(theta_d), written in place
        delta = t.proj.apply(t.theta_d)
        np.testing.assert_allclose(host.theta, host.theta0 + delta, rtol=1e-5, atol=1e-6)
        assert host.evaluate() > 0.6


def test_said_trainer_from_layer_groups():
    host, model, x, y = tiny_problem()
    start_loss = full_loss(host, x, y)
    with host.trainer(d=30, said=True, lr=0.05) as t:
        assert t.proj.n_scales == 2
        t.run(150)
        t.sync()
        assert full_loss(host, x, y) < 0.7 * start_loss


def test_search_on_the_tiny_model_restores_theta0():
    host, model, x, y = tiny_problem()
    with host.search(ds=[1, 40], lrs=[0.05], steps=150) as s:
        r = s.result()
        points = s.points()
    assert r.baseline > 0.8
    assert [p.d for p in points] == [1, 40]
    assert points[1].mean > points[0].mean
    assert np.array_equal(host.theta, host.theta0)


def test_reference_fastfood_has_unit_columns_when_D_is_a_power_of_two():
    ff = ReferenceFastfood(D=256, d=10, seed=0)
    for j in range(10):
        e = torch.zeros(10)
        e[j] = 1
        assert float(ff(e).norm()) == pytest.approx(1.0, rel=1e-5)
    x = torch.randn(10, requires_grad=True)
    g = torch.randn(256)
    (ff(x) * g).sum().backward()
    cols = torch.stack([ff(torch.eye(10)[j]) for j in range(10)], dim=1)
    np.testing.assert_allclose(x.grad.numpy(), (cols.T @ g).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def test_iterable_data_is_cycled_and_said_search_runs():
    host, model, x, y = tiny_problem()
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]
    host = TorchHost(model, torch.nn.functional.cross_entropy, batches,
                     eval_fn=lambda m: accuracy(m, x, y), groups="tensor")
    seen = [host.batch(s)[0] for s in range(6)]
    assert seen[4] is batches[0][0] and seen[5] is batches[1][0]
    with host.search(ds=[10, 30], lrs=[0.05], steps=60, said=True, baseline=1.0) as s:
        points = s.points()
    assert [p.d for p in points] == [10, 30]
    assert all(0.0 <= p.mean <= 1.0 for p in points)


def test_reference_tables_run_in_the_library():
    # A PyTorch run's own draws (B, randperm, randn) imported: the library computes the
    # reference map and its exact adjoint (autograd's gradient) to float precision.
    for D, d in [(1000, 37), (4096, 4096), (70000, 300)]:
        ff = ReferenceFastfood(D=D, d=d, seed=D)
        p = intdim.Projection.from_fastfood_tables(D, d, ff.B, ff.Pi, ff.G)
        assert p.seed == 0 and p.get("fastfood_tables") == 1
        x = torch.randn(d, generator=torch.Generator().manual_seed(1), requires_grad=True)
        g = torch.randn(D, generator=torch.Generator().manual_seed(2))
        y = ff(x)
        (y * g).sum().backward()
        want_y, want_g = y.detach().numpy(), x.grad.numpy()
        got_y = p.apply(x.detach().numpy())
        got_g = p.vjp(g.numpy())
        assert np.max(np.abs(got_y - want_y)) <= 1e-5 * np.max(np.abs(want_y))
        assert np.max(np.abs(got_g - want_g)) <= 1e-5 * np.max(np.abs(want_g))
        p.close()


def test_library_tables_run_in_the_reference():
    # The tables a seed denotes, exported, make the torch reference compute the library's map.
    D, d = 3000, 50
    with intdim.Projection("fastfood", D, d, seed=11) as p:
        B, Pi, G = p.fastfood_tables()
        ff = ReferenceFastfood.from_tables(D, d, B, Pi, G)
        x = np.random.default_rng(3).standard_normal(d).astype(np.float32)
        want = ff(torch.from_numpy(x)).numpy()
        got = p.apply(x)
        assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
        with pytest.raises(ValueError):
            ReferenceFastfood.from_tables(D, d, B[:-1], Pi, G)


def test_losses_may_be_0d_tensors_but_not_strings():
    proj = intdim.Projection("identity", 4, 4)
    theta = np.zeros(4, np.float32)
    value = {"loss": torch.tensor(0.25)}

    def grad_fn(step, th, gr):
        gr[:] = th - 1.0
        return value["loss"]

    with proj, intdim.Trainer(proj, theta, grad_fn, lr=0.1) as t:
        for ok in (torch.tensor(0.25), torch.tensor(0.25, dtype=torch.float64),
                   torch.tensor(2), torch.tensor(0.25, requires_grad=True) * 1):
            value["loss"] = ok
            assert t.step() == pytest.approx(float(ok))
        for bad in (torch.tensor([0.25]), torch.tensor(True), torch.tensor(1 + 1j), "0.25"):
            value["loss"] = bad
            with pytest.raises(TypeError, match="grad_fn returned .*must return a real"):
                t.step()
        assert t.steps_done == 4


def batchnorm_problem(train_mode=True):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(128, 4, generator=gen) * 3 + 2
    y = (x[:, 0] > 2).long()
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Tanh(), torch.nn.Linear(8, 2))

    def batches(step):
        start = (step * 32) % 128
        return x[start:start + 32], y[start:start + 32]

    host = TorchHost(model, torch.nn.functional.cross_entropy, batches,
                     eval_fn=lambda m: accuracy(m, x, y), train_mode=train_mode)
    return host, model


def test_module_buffers_are_restored_for_every_trial_and_after_a_search():
    host, model = batchnorm_problem()
    bn = model[1]
    mean0, count0 = bn.running_mean.clone(), int(bn.num_batches_tracked)
    before = host.evaluate()
    seen = []  # the running mean each trial starts from

    def grad_fn(step, theta, grad):
        if step == 1:  # step 0 has run: its statistics came from theta0's buffers
            seen.append(int(bn.num_batches_tracked))
        return host.grad_fn(step, theta, grad)

    with intdim.Search(host.D, steps=20, seeds=1, baseline=1.0) as s:
        s.set_d_list([4, 8])
        s.set_lrs([1e-2])
        s.run(host.theta, grad_fn, host.metric_callback(host.eval_metric),
              theta0=host.theta0)
    assert len(seen) == 2 and seen == [count0 + 1] * 2  # each trial from theta0's buffers
    assert int(bn.num_batches_tracked) == count0 + 20   # the last trial's 20 steps
    host.restore_theta0()
    assert torch.equal(bn.running_mean, mean0) and int(bn.num_batches_tracked) == count0
    assert host.evaluate() == before
    s2 = host.search(ds=[4], lrs=[1e-2], steps=10, baseline=1.0)  # restores by itself
    s2.close()
    assert torch.equal(bn.running_mean, mean0) and host.evaluate() == before


def test_train_mode_false_leaves_the_module_mode_alone():
    host, model = batchnorm_problem(train_mode=False)
    model.eval()  # frozen BatchNorm: its statistics must not move
    mean0 = model[1].running_mean.clone()
    grad = np.zeros(host.D, np.float32)
    host.grad_fn(3, host.theta, grad)
    assert not model.training and torch.equal(model[1].running_mean, mean0)
    assert np.any(grad != 0)
    host_t, model_t = batchnorm_problem()
    model_t.eval()
    host_t.grad_fn(3, host_t.theta, np.zeros(host_t.D, np.float32))
    assert model_t.training  # the default puts it back in train mode


class _Counter(torch.nn.Module):
    """A model whose buffer is replaced (not updated in place) by every forward pass."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, x):
        if self.training:
            self.seen = self.seen + 1  # a new tensor object each time
        return self.lin(x)


def test_buffers_replaced_by_the_module_are_restored_too():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    model = _Counter()
    host = TorchHost(model, torch.nn.functional.cross_entropy,
                     lambda step: (x[:16], y[:16]), eval_fn=lambda m: accuracy(m, x, y))
    starts = []
    for _ in range(3):
        grad = np.zeros(host.D, np.float32)
        for step in range(5):
            host.grad_fn(step, host.theta, grad)
            if step == 0:
                starts.append(float(model.seen))
    assert starts == [1.0, 1.0, 1.0]  # every run starts from the saved buffer
    host.restore_theta0()
    assert float(model.seen) == 0.0
