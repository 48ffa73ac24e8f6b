"""Exactness, state preservation and API of sklearn_ntk.empirical_ntk / EmpiricalNTKKernel."""

import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sklearn_ntk.torch_ntk import (  # noqa: E402
    EmpiricalNTKKernel,
    empirical_ntk,
    empirical_ntk_diag,
)

DT = torch.float64


def jacobian_rows(model, X, batch=False):
    """Reference: per-sample autograd Jacobian (n, k, P) -- the seed notebook's method.

    With ``batch=True`` the whole batch is one forward pass (the NTK of the batch function,
    needed for models whose samples interact).
    """
    params = [p for p in model.parameters() if p.requires_grad]

    def rows_of(out):
        rows = []
        for i in range(out.shape[0]):
            per = []
            for a in range(out.shape[1]):
                gs = torch.autograd.grad(out[i, a], params, retain_graph=True, allow_unused=True)
                per.append(
                    torch.cat([
                        (torch.zeros_like(p) if g is None else g).reshape(-1)
                        for p, g in zip(params, gs, strict=True)
                    ])
                )
            rows.append(torch.stack(per))
        return rows

    if batch:
        out = model(X)
        return torch.stack(rows_of(out.reshape(out.shape[0], -1)))
    rows = []
    for x in X:
        out = model(x.unsqueeze(0))
        rows += rows_of(out.reshape(1, -1))
    return torch.stack(rows)


def reference_ntk(model, X1, X2=None, batch=False):
    J1 = jacobian_rows(model, X1, batch)
    J2 = J1 if X2 is None else jacobian_rows(model, X2, batch)
    return torch.einsum("iap,jbp->ijab", J1, J2).detach()


def seeded(module, seed=0):
    torch.manual_seed(seed)
    return module().double()


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.ReLU(inplace=True), nn.Linear(6, 3)
        )

    def forward(self, x):
        return self.net(x)


class ConvNet(nn.Module):
    """Conv2d (int / 'same' / 'valid' padding, stride, dilation, no bias), Conv1d, LayerNorm
    (fallback path), reflect padding, and a dense head."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 3, 3, stride=2, padding="valid", bias=False)
        self.c3 = nn.Conv2d(3, 3, 2, padding="same", dilation=2, padding_mode="reflect")
        self.c4 = nn.Conv1d(3, 2, 3, padding="same")
        self.ln = nn.LayerNorm(2)
        self.fc = nn.Linear(2 * 9, 2)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = torch.tanh(self.c2(h))
        h = torch.sin(self.c3(h))  # (n, 3, 3, 3)
        h = self.c4(h.flatten(2))  # (n, 2, 9)
        h = self.ln(h.transpose(1, 2))
        return self.fc(h.flatten(1))


class Tied(nn.Module):
    """Shared weight between two modules, a module applied twice, a scaled functional use and a
    parameter used in an arbitrary expression."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.b.weight = self.a.weight
        self.v = nn.Parameter(torch.randn(4))
        self.w = nn.Parameter(torch.randn(2, 4))

    def forward(self, x):
        h = torch.tanh(self.a(x))
        h = torch.tanh(self.b(h))
        h = torch.tanh(self.a(h))
        h = torch.nn.functional.linear(h, 0.5 * self.w) + torch.nn.functional.linear(x, self.w / 3)
        return h + torch.sin(self.v[:2] * h)


@pytest.mark.parametrize("output", ["auto", "full", "trace", "mean"])
@pytest.mark.parametrize("batch_size", [None, 4])
def test_mlp_matches_per_sample_loop(output, batch_size):
    model = seeded(MLP)
    X1 = torch.randn(9, 5, dtype=DT, generator=torch.Generator().manual_seed(1))
    X2 = torch.randn(5, 5, dtype=DT, generator=torch.Generator().manual_seed(2))
    ref = reference_ntk(model, X1, X2)
    got = empirical_ntk(model, X1, X2, output=output, batch_size=batch_size)
    if output in ("auto", "full"):
        expected = ref
    elif output == "trace":
        expected = torch.einsum("ijaa->ij", ref)
    else:
        expected = torch.einsum("ijaa->ij", ref) / 3
    assert got.shape == expected.shape
    assert torch.max(torch.abs(got - expected)) <= 1e-10
    # symmetric call reuses the features and mirrors blocks
    sym = empirical_ntk(model, X1, output="full", batch_size=batch_size)
    assert torch.max(torch.abs(sym - reference_ntk(model, X1))) <= 1e-10


def test_scalar_model_auto_is_2d():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 8), nn.GELU(), nn.Linear(8, 1)).double()
    X = np.random.default_rng(0).normal(size=(6, 3))
    K = empirical_ntk(model, X)
    assert isinstance(K, np.ndarray) and K.shape == (6, 6)
    ref = reference_ntk(model, torch.as_tensor(X))[:, :, 0, 0].numpy()
    assert np.max(np.abs(K - ref)) <= 1e-10


def test_convnet_matches_per_sample_loop():
    model = seeded(ConvNet)
    X = torch.randn(5, 2, 8, 8, dtype=DT, generator=torch.Generator().manual_seed(4))
    X2 = torch.randn(3, 2, 8, 8, dtype=DT, generator=torch.Generator().manual_seed(5))
    ref = reference_ntk(model, X, X2)
    got = empirical_ntk(model, X, X2, output="full", batch_size=2)
    assert torch.max(torch.abs(got - ref)) <= 1e-10 * max(1.0, ref.abs().max().item())


def test_tied_and_functional_parameters_match_per_sample_loop():
    model = seeded(Tied)
    X = torch.randn(7, 4, dtype=DT, generator=torch.Generator().manual_seed(6))
    ref = reference_ntk(model, X)
    got = empirical_ntk(model, X, output="full")
    assert torch.max(torch.abs(got - ref)) <= 1e-10


def test_fast_path_covers_dense_and_conv_layers():
    """The structured path must really be taken (not silently the fallback)."""
    from sklearn_ntk.torch_ntk import _Engine

    model = seeded(ConvNet)
    X = torch.randn(3, 2, 8, 8, dtype=DT)
    engine = _Engine(model, None, DT, torch.device("cpu"))
    engine.features(X)
    fast, fallback = engine.plan
    assert fallback == {"ln.weight", "ln.bias"}
    assert {"c1.weight", "c1.bias", "c2.weight", "c3.weight", "c4.weight", "fc.weight"} <= fast
    tied = _Engine(seeded(Tied), None, DT, torch.device("cpu"))
    tied.features(torch.randn(3, 4, dtype=DT))
    assert tied.plan == ({"a.weight", "a.bias", "b.bias", "w"}, {"v"})


def snapshot(model):
    return {
        "params": {k: p.detach().clone() for k, p in model.named_parameters()},
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "grad": {k: None if p.grad is None else p.grad.clone()
                 for k, p in model.named_parameters()},
        "buffers": {k: b.clone() for k, b in model.named_buffers()},
        "modes": [m.training for m in model.modules()],
        "dtypes": {k: p.dtype for k, p in model.named_parameters()},
    }


def assert_same_state(a, b):
    assert a["requires_grad"] == b["requires_grad"]
    assert a["modes"] == b["modes"]
    assert a["dtypes"] == b["dtypes"]
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k])
        assert (a["grad"][k] is None) == (b["grad"][k] is None)
        if a["grad"][k] is not None:
            assert torch.equal(a["grad"][k], b["grad"][k])
    for k in a["buffers"]:
        assert torch.equal(a["buffers"][k], b["buffers"][k])


def test_model_state_left_exactly_as_found():
    torch.manual_seed(7)
    model = nn.Sequential(
        nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.0), nn.Linear(6, 2)
    )  # float32 model, computed in float64 below
    model[0].bias.requires_grad_(False)
    model(torch.randn(4, 3)).sum().backward()  # leave some .grad around
    model[1].eval()
    model[4].train()
    before = snapshot(model)
    X = torch.randn(5, 3)
    empirical_ntk(model, X, X[:2], dtype=torch.float64, output="full")
    model[1].train()  # batch statistics: the interacting path updates running stats internally
    before_train = snapshot(model)
    empirical_ntk(model, X, dtype="float64")
    assert_same_state(before_train, snapshot(model))
    model[1].eval()
    assert_same_state(before, snapshot(model))


def test_frozen_parameters_are_excluded_and_params_selects():
    model = seeded(MLP)
    X = torch.randn(4, 5, dtype=DT)
    for p in model.net[0].parameters():
        p.requires_grad_(False)
    ref = reference_ntk(model, X)
    assert torch.max(torch.abs(empirical_ntk(model, X, output="full") - ref)) <= 1e-10
    only = empirical_ntk(model, X, output="full", params=["net.4.bias"])
    assert torch.allclose(only, torch.eye(3, dtype=DT).expand(4, 4, 3, 3))
    with pytest.raises(ValueError, match="not found"):
        empirical_ntk(model, X, params=["nope"])


def test_batchnorm_train_uses_batch_function_ntk():
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)).double()
    model.train()
    X = torch.randn(6, 3, dtype=DT)
    X2 = torch.randn(4, 3, dtype=DT)
    running = model[1].running_mean.clone()
    ref = reference_ntk(model, X, X2, batch=True)
    model[1].running_mean.copy_(running)
    got = empirical_ntk(model, X, X2, output="full")
    assert torch.max(torch.abs(got - ref)) <= 1e-10
    assert torch.equal(model[1].running_mean, running)
    # treating the samples as independent gives a different answer: detection matters
    model[1].requires_grad_(False)  # dense layers only, so the per-sample path can run
    ref = reference_ntk(model, X, X2, batch=True)
    model[1].running_mean.copy_(running)
    got = empirical_ntk(model, X, X2, output="full")
    assert torch.max(torch.abs(got - ref)) <= 1e-10
    wrong = empirical_ntk(model, X, X2, output="full", sample_interaction=False)
    assert torch.max(torch.abs(wrong - ref)) > 1e-3
    with pytest.warns(UserWarning, match="batch_size is ignored"):
        empirical_ntk(model, X, batch_size=2)


def test_dtype_device_and_return_types():
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))  # float32
    Xn = np.random.default_rng(1).normal(size=(4, 3))
    Xn_copy = Xn.copy()
    K32 = empirical_ntk(model, Xn)
    assert isinstance(K32, np.ndarray) and K32.dtype == np.float32
    K64 = empirical_ntk(model, Xn, dtype=np.float64, device="cpu")
    assert K64.dtype == np.float64
    np.testing.assert_allclose(K32, K64, rtol=1e-4, atol=1e-5)
    Kt = empirical_ntk(model, torch.as_tensor(Xn), dtype=torch.float64)
    assert isinstance(Kt, torch.Tensor) and Kt.dtype == torch.float64
    np.testing.assert_array_equal(Xn, Xn_copy)


def test_diag_matches_full():
    model = seeded(ConvNet)
    X = torch.randn(4, 2, 8, 8, dtype=DT)
    full = empirical_ntk(model, X, output="full")
    d = empirical_ntk_diag(model, X, output="full", batch_size=3)
    assert torch.allclose(d, torch.einsum("iiab->iab", full), rtol=1e-12, atol=1e-12)
    dm = empirical_ntk_diag(model, X, output="mean")
    assert torch.allclose(dm, torch.einsum("iiaa->i", full) / 2, rtol=1e-12, atol=1e-12)


def test_validation_errors():
    model = seeded(MLP)
    X = torch.randn(4, 5, dtype=DT)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        empirical_ntk(lambda x: x, X)
    with pytest.raises(ValueError, match="output must be"):
        empirical_ntk(model, X, output="diag")
    with pytest.raises(ValueError, match="batch_size"):
        empirical_ntk(model, X, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        empirical_ntk(model, X, batch_size=2.5)
    with pytest.raises(ValueError, match="same per-sample shape"):
        empirical_ntk(model, X, torch.randn(3, 4, dtype=DT))
    bad = X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        empirical_ntk(model, bad)
    with pytest.raises(ValueError, match="no samples"):
        empirical_ntk(model, X[:0])
    with pytest.raises(ValueError, match="floating"):
        empirical_ntk(model, X, dtype=torch.int64)
    with pytest.raises(ValueError, match="sample_interaction"):
        empirical_ntk(model, X, sample_interaction="yes")


def test_empirical_ntk_kernel_in_sklearn():
    from sklearn.base import clone
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.kernel_ridge import KernelRidge

    model = seeded(MLP)
    rng = np.random.default_rng(10)
    X, Y = rng.normal(size=(12, 5)), rng.normal(size=(4, 5))
    y = np.sin(X[:, 0])
    kern = EmpiricalNTKKernel(model)
    K = kern(X)
    assert K.dtype == np.float64 and K.flags.writeable and np.array_equal(K, K.T)
    full = reference_ntk(model, torch.as_tensor(X), torch.as_tensor(Y)).numpy()
    np.testing.assert_allclose(kern(X, Y), np.einsum("ijaa->ij", full) / 3, rtol=0, atol=1e-10)
    np.testing.assert_allclose(kern.diag(X), np.diag(K), rtol=1e-12)
    K2, grad = kern(X, eval_gradient=True)
    assert grad.shape == (12, 12, 0) and kern.theta.shape == (0,)
    gpr = GaussianProcessRegressor(kern, alpha=1e-8).fit(X, y)
    kr = KernelRidge(alpha=1e-8, kernel=kern).fit(X, y)
    np.testing.assert_allclose(gpr.predict(Y), kr.predict(Y), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        gpr.predict(Y), kern(Y, X) @ np.linalg.solve(K + 1e-8 * np.eye(12), y), rtol=1e-6
    )
    for other in (clone(kern), pickle.loads(pickle.dumps(kern))):
        np.testing.assert_allclose(other(X, Y), kern(X, Y), rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="output"):
        EmpiricalNTKKernel(model, output="full")(X)


def test_empirical_ntk_kernel_input_shape():
    model = seeded(ConvNet)
    rng = np.random.default_rng(11)
    X = rng.normal(size=(3, 2 * 8 * 8))
    kern = EmpiricalNTKKernel(model, input_shape=(2, 8, 8), output="trace")
    ref = reference_ntk(model, torch.as_tensor(X.reshape(3, 2, 8, 8)))
    np.testing.assert_allclose(kern(X), np.einsum("ijaa->ij", ref.numpy()), atol=1e-10)
    with pytest.raises(ValueError, match="input_shape"):
        EmpiricalNTKKernel(model, input_shape=(2, 8, 7))(X)


class Tokens(nn.Module):
    """Dense layers applied per position of a sequence (several positions per sample)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(16, 32)
        self.head = nn.Linear(32, 2)

    def forward(self, x):  # x: (n, 3, 16)
        return self.head(torch.tanh(self.emb(x)).mean(1))


@pytest.mark.parametrize("output", ["full", "trace"])
def test_positions_match_per_sample_loop(output):
    model = seeded(Tokens)
    X = torch.randn(5, 3, 16, dtype=DT, generator=torch.Generator().manual_seed(12))
    X2 = torch.randn(2, 3, 16, dtype=DT, generator=torch.Generator().manual_seed(13))
    ref = reference_ntk(model, X, X2)
    got = empirical_ntk(model, X, X2, output=output)
    expected = ref if output == "full" else torch.einsum("ijaa->ij", ref)
    assert torch.max(torch.abs(got - expected)) <= 1e-10
    d = empirical_ntk_diag(model, X, output=output)
    full = reference_ntk(model, X)
    dref = torch.einsum("iiab->iab", full) if output == "full" else torch.einsum("iiaa->i", full)
    assert torch.max(torch.abs(d - dref)) <= 1e-10


class Centering(nn.Module):
    """Mixes samples without any BatchNorm: only the probe can detect it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return self.out(h - h.mean(0, keepdim=True))


def test_probe_detects_custom_sample_mixing_and_keeps_rng():
    model = seeded(Centering)
    X = torch.randn(6, 3, dtype=DT, generator=torch.Generator().manual_seed(14))
    ref = reference_ntk(model, X, batch=True)
    state = torch.random.get_rng_state()
    got = empirical_ntk(model, X, output="full")
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.max(torch.abs(got - ref)) <= 1e-10
    # dropout in train mode is not mistaken for sample mixing (same masks in both probes)
    drop = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 1)).double().train()
    from sklearn_ntk.torch_ntk import _Engine, _probe_interaction

    assert not _probe_interaction(_Engine(drop, None, DT, torch.device("cpu")), X)[0]
    assert _probe_interaction(_Engine(model, None, DT, torch.device("cpu")), X)[0]


def test_empirical_ntk_kernel_in_ntk_estimators():
    """A finite network's kernel drives the closed-form estimators (t = inf: kernel regression)."""
    from sklearn_ntk import NTKRegressor

    model = seeded(MLP)
    rng = np.random.default_rng(15)
    X, Y = rng.normal(size=(10, 5)), rng.normal(size=(3, 5))
    y = np.cos(X[:, 1])
    kern = EmpiricalNTKKernel(model)
    reg = NTKRegressor(kernel=kern, t=np.inf, alpha=1e-6).fit(X, y)
    expected = kern(Y, X) @ np.linalg.solve(kern(X) + 1e-6 * np.eye(10), y)
    np.testing.assert_allclose(reg.predict(Y), expected, rtol=1e-6, atol=1e-9)


class Mixing(nn.Module):
    """Each output depends on the batch mean, which does not vanish on a single row."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return self.out(h + 0.5 * h.mean(0, keepdim=True))


def test_probe_cannot_be_fooled_by_identical_rows_or_a_single_row():
    model = seeded(Mixing)
    X = torch.randn(12, 3, dtype=DT, generator=torch.Generator().manual_seed(16))
    same = X.clone()
    same[:8] = X[0]  # the first rows are all alike: a probe that swaps rows sees nothing
    got = empirical_ntk(model, same, output="full")
    assert torch.max(torch.abs(got - reference_ntk(model, same, batch=True))) <= 1e-10
    # X1 with one row: only X2 can reveal the interaction
    got = empirical_ntk(model, X[:1], X, output="full")
    assert torch.max(torch.abs(got - reference_ntk(model, X[:1], X, batch=True))) <= 1e-10
    # a one-row call of its own is probed too (batch function of a single sample)
    got = empirical_ntk_diag(model, X[:1], output="full")
    assert torch.max(torch.abs(got[0] - reference_ntk(model, X[:1], batch=True)[0, 0])) <= 1e-10


class InPlace(nn.Module):
    """Modifies its input in place; LayerNorm sends some parameters down the fallback path."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.ln = nn.LayerNorm(4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        x.mul_(2.0)
        return self.out(self.ln(torch.tanh(self.fc(x))))


def test_model_modifying_its_input_in_place_gets_its_own_input():
    model = seeded(InPlace)
    X = torch.randn(5, 3, dtype=DT, generator=torch.Generator().manual_seed(17))
    X_before = X.clone()
    got = empirical_ntk(model, X, output="full", batch_size=2)
    assert torch.equal(X, X_before)  # the caller's tensor is never touched
    ref = reference_ntk(model, X.clone())  # the reference modifies its (copied) input once
    assert torch.max(torch.abs(got - ref)) <= 1e-10


def test_global_random_state_is_not_advanced():
    torch.manual_seed(18)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.LayerNorm(8), nn.Linear(8, 1))
    model = model.double().train()
    X = torch.randn(6, 3, dtype=DT)
    state = torch.random.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dropout is vmapped (per-sample randomness): no loop
        first = empirical_ntk(model, X)
        assert torch.equal(state, torch.random.get_rng_state())
        again = empirical_ntk(model, X)
    assert torch.equal(first, again)  # same caller state, same dropout masks


class Indices(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 3)
        self.fc = nn.Linear(3, 1)

    def forward(self, idx):
        return self.fc(torch.tanh(self.emb(idx)).mean(1))


class ArgMax(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x).argmax(1)


def test_meta_models_integer_inputs_and_outputs_give_clear_errors():
    with torch.device("meta"):
        meta = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="'meta' device.*to_empty"):
        empirical_ntk(meta, np.ones((3, 3)))
    with pytest.raises(ValueError, match="device='meta'"):
        empirical_ntk(seeded(MLP), np.ones((3, 5)), device="meta")
    with pytest.raises(TypeError, match=r"integer inputs given \(torch.int64\).*floating-point X"):
        empirical_ntk(seeded(MLP), np.ones((3, 5), dtype=np.int64))
    with pytest.raises(TypeError, match="outputs.*floating point"):
        empirical_ntk(seeded(ArgMax), np.ones((3, 3)))
    # integer inputs stay integers for models that take indices
    model = seeded(Indices)
    idx = torch.tensor([[0, 1, 4], [2, 2, 2], [0, 1, 4], [3, 0, 1]])
    ref = reference_ntk(model, idx)[:, :, 0, 0]
    assert torch.max(torch.abs(empirical_ntk(model, idx) - ref)) <= 1e-10


class CheckedInput(nn.Module):
    """Python control flow on tensor values (an input check): fine eagerly, not under vmap."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.ln = nn.LayerNorm(4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        if not bool(torch.isfinite(x).all()):
            raise ValueError("non-finite input")
        return self.out(self.ln(torch.tanh(self.fc(x))))


def test_vmap_failure_is_announced_once_and_other_errors_propagate(monkeypatch):
    from sklearn_ntk import torch_ntk
    from sklearn_ntk.exceptions import PerformanceWarning

    model = seeded(CheckedInput)
    X = torch.randn(6, 3, dtype=DT, generator=torch.Generator().manual_seed(19))
    with pytest.warns(PerformanceWarning, match="vmap cannot batch") as record:
        got = empirical_ntk(model, X, output="full", batch_size=2)
    assert len([w for w in record if w.category is PerformanceWarning]) == 1
    assert record[0].filename == __file__  # attributed to the caller's line
    assert torch.max(torch.abs(got - reference_ntk(model, X))) <= 1e-10

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB")

    monkeypatch.setattr(torch_ntk, "vmap", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):  # not hidden behind the slow loop
        empirical_ntk(seeded(InPlace), X)

    def failing(*args, **kwargs):  # an error that does not mean "cannot be vmapped"
        raise ValueError("a bug in the batched code")

    monkeypatch.setattr(torch_ntk, "vmap", failing)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)  # no silent switch to the loop
        with pytest.raises(ValueError, match="a bug in the batched code"):
            empirical_ntk(seeded(InPlace), X)


def test_memory_guard_refuses_before_allocating(monkeypatch):
    import sklearn_ntk._validation as val

    model = nn.Sequential(nn.Linear(3, 1)).double()
    X = torch.zeros(70_000, 3, dtype=DT)  # a 70,000 x 70,000 float64 kernel: 36.5 GiB
    monkeypatch.setattr(val, "available_memory_bytes", lambda: 16 * 2**30)
    with pytest.raises(MemoryError, match=r"empirical_ntk on 70000 x 70000 inputs needs "
                                          r"\d+\.\d+ GiB but only 16.00 GiB"):
        empirical_ntk(model, X)
    monkeypatch.setattr(val, "available_memory_bytes", lambda: 64 * 2**20)
    mlp = seeded(MLP)
    X = torch.zeros(1000, 5, dtype=DT)
    with pytest.raises(MemoryError, match="3 x 3 output blocks"):  # k^2 entries per pair
        empirical_ntk(mlp, X, output="full")
    empirical_ntk(mlp, X[:200], output="trace")  # small enough: no error
    batchnorm = nn.Sequential(nn.Linear(5, 40_000), nn.BatchNorm1d(40_000), nn.Linear(40_000, 1))
    with pytest.raises(MemoryError, match="batch Jacobians"):  # (n, k, #params) per input
        empirical_ntk(batchnorm.double(), X[:40])
    emb = Indices().double()
    emb.emb = nn.Embedding(100_000, 3).double()
    with pytest.raises(MemoryError, match="per-sample Jacobian of 300000 parameters"):
        empirical_ntk(emb, torch.zeros(100, 3, dtype=torch.int64))


@pytest.mark.parametrize("output", ["full", "trace"])
def test_kernel_assembled_in_row_blocks_is_exact(monkeypatch, output):
    """Tiny contraction blocks (one row each) give the same kernel as one block."""
    from sklearn_ntk import torch_ntk

    model = seeded(MLP)
    X1 = torch.randn(7, 5, dtype=DT, generator=torch.Generator().manual_seed(20))
    X2 = torch.randn(4, 5, dtype=DT, generator=torch.Generator().manual_seed(21))
    whole = empirical_ntk(model, X1, X2, output=output)
    sym = empirical_ntk(model, X1, output=output, batch_size=3)
    mix = empirical_ntk(seeded(Mixing), X1[:, :3], X2[:, :3], output=output)
    monkeypatch.setattr(torch_ntk, "_BLOCK_BYTES", 1)
    assert torch.max(torch.abs(empirical_ntk(model, X1, X2, output=output) - whole)) <= 1e-12
    blocks = empirical_ntk(model, X1, output=output, batch_size=3)
    assert torch.max(torch.abs(blocks - sym)) <= 1e-12
    mixed = empirical_ntk(seeded(Mixing), X1[:, :3], X2[:, :3], output=output)
    assert torch.max(torch.abs(mixed - mix)) <= 1e-12
    ref = reference_ntk(model, X1, X2)
    ref = ref if output == "full" else torch.einsum("ijaa->ij", ref)
    assert torch.max(torch.abs(whole - ref)) <= 1e-10


def test_memory_guard_uses_free_device_memory_on_cuda(monkeypatch):
    """On a CUDA device the guard compares with the device's free memory (mocked here)."""
    from sklearn_ntk import torch_ntk

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 80 * 2**30))
    cuda = torch.device("cuda", 0)
    torch_ntk._guard(2**30, "a block", cuda, "use a smaller block.")  # fits exactly
    with pytest.raises(MemoryError, match=r"a block on cuda:0 needs 2.00 GiB but only 1.00 GiB"
                                          r" is available; use a smaller block"):
        torch_ntk._guard(2 * 2**30, "a block", cuda, "use a smaller block.")
