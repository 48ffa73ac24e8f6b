"""Finite PyTorch twins of layer lists (``sklearn_ntk.nn.from_layers``).

The forward pass is checked number for number against neural-tangents' ``stax.apply_fn`` with the
same parameters (padding, strides, pooling, LayerNorm, residual branches, 1-, 2- and 3-D inputs);
the parameterisation, seeding and the refusals are checked directly.
"""

import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn_ntk import empirical_ntk  # noqa: E402
from sklearn_ntk import layers as nl  # noqa: E402
from sklearn_ntk.nn import NTKConv, NTKNetwork, from_kernel, from_layers  # noqa: E402

from .twin_specs import ARRAYS, META, case  # noqa: E402

DT = torch.float64


@pytest.mark.parametrize("index", range(len(META["forward"])))
def test_forward_equals_neural_tangents_apply_fn(index):
    layers, shape, sw, sb = case("forward", index)
    net = from_layers(layers, shape, META["width"], weight_std=sw, bias_std=sb,
                      out_features=META["out"], dtype=DT)
    params = list(net.parameters())
    refs = [ARRAYS[f"fwd{index}_p{j}"] for j in range(len(params))]
    assert f"fwd{index}_p{len(params)}" not in ARRAYS  # as many parameters as stax
    with torch.no_grad():
        for p, ref in zip(params, refs, strict=True):
            assert tuple(p.shape) == ref.shape
            p.copy_(torch.as_tensor(ref))
    out = net(torch.as_tensor(ARRAYS[f"fwd{index}_X"])).detach().numpy()
    np.testing.assert_allclose(out, ARRAYS[f"fwd{index}_out"], rtol=1e-10, atol=1e-12)


def test_conv_follows_the_ntk_parameterisation():
    conv = NTKConv(2, 3, (3,), padding="valid", weight_std=1.7, bias_std=0.4, generator=None,
                   dtype=DT)
    h = torch.randn(4, 6, 2, dtype=DT)
    W, b = conv.weight.detach(), conv.bias.detach()
    expected = torch.stack([
        torch.einsum("nkc,ock->no", h[:, t:t + 3], W) * 1.7 / math.sqrt(6) + 0.4 * b
        for t in range(4)
    ], dim=1)
    torch.testing.assert_close(conv(h), expected, rtol=1e-13, atol=1e-13)


def test_same_padding_puts_the_extra_pixel_after_the_image():
    # a (2,) filter of ones at stride 1 on [1, 2, 3]: "same" pads one zero at the end
    conv = NTKConv(1, 1, (2,), weight_std=math.sqrt(2), bias_std=0.0, dtype=DT)
    circ = NTKConv(1, 1, (2,), padding="circular", weight_std=math.sqrt(2), bias_std=0.0,
                   dtype=DT)
    with torch.no_grad():
        for c in (conv, circ):
            c.weight.fill_(1.0)
    x = torch.tensor([[[1.0], [2.0], [3.0]]], dtype=DT)
    assert conv(x)[0, :, 0].tolist() == [3.0, 5.0, 3.0]
    assert circ(x)[0, :, 0].tolist() == [3.0, 5.0, 4.0]


def test_seeded_twins_are_reproducible():
    layers = [nl.Conv((3, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()]
    a = from_layers(layers, (5, 5, 1), 8, seed=3, dtype=DT)
    b = from_layers(layers, (5, 5, 1), 8, seed=3, dtype=torch.float32)
    c = from_layers(layers, (5, 5, 1), 8, seed=4, dtype=DT)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        torch.testing.assert_close(pa.detach().float(), pb.detach())
        assert not torch.equal(pa, pc)


def test_layer_stds_override_the_defaults_and_readout_gets_out_features():
    net = from_layers([nl.Dense(weight_std=2.0), "erf", nl.Dense(bias_std=0.0)], 4, 7,
                      weight_std=1.1, bias_std=0.3, out_features=3, seed=0)
    first, readout = net.body.layers[0], net.body.layers[2]
    assert (first.weight_std, first.bias_std, first.out_features) == (2.0, 0.3, 7)
    assert (readout.weight_std, readout.bias_std, readout.out_features) == (1.1, 0.0, 3)


def test_readout_may_sit_in_a_trailing_serial_block():
    X = torch.randn(3, 4, dtype=DT)
    flat = from_layers([nl.Dense(), "relu", nl.Dense()], 4, 6, out_features=2, seed=1, dtype=DT)
    nested = from_layers([nl.serial(nl.Dense(), "relu"), nl.serial(nl.Dense())], 4, 6,
                         out_features=2, seed=1, dtype=DT)
    torch.testing.assert_close(nested(X), flat(X))


def test_twin_accepts_flat_rows_and_shaped_inputs_and_pickles():
    net = from_layers([nl.Conv((2, 2)), "relu", nl.Flatten(), nl.Dense()], (3, 4, 2), 5,
                      seed=0, dtype=DT)
    X = torch.randn(6, 24, dtype=DT)
    torch.testing.assert_close(net(X), net(X.reshape(6, 3, 4, 2)))
    clone = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(clone(X), net(X))
    with pytest.raises(ValueError, match="do not hold samples of shape"):
        net(torch.randn(6, 23, dtype=DT))


def test_named_layers_and_serial_objects_are_read_as_their_layers():
    plain = [nl.Dense(), "relu", nl.Dense()]
    named = nl.serial(("hidden", nl.Dense()), "relu", ("readout", nl.Dense()))
    X = torch.randn(3, 4, dtype=DT)
    a = from_layers(plain, 4, 6, seed=1, dtype=DT)
    b = from_layers(named, 4, 6, seed=1, dtype=DT)
    torch.testing.assert_close(a(X), b(X))


def test_empirical_ntk_of_a_twin_equals_its_jacobian_gram():
    # the structured path of empirical_ntk (linear/conv uses) against plain per-sample gradients
    layers = [nl.Conv((3,), strides=(2,), padding="circular"), "relu",
              nl.Residual(nl.Conv((2,)), "erf"), nl.LayerNorm(), nl.GlobalAvgPool(), nl.Dense()]
    net = from_layers(layers, (7, 2), 4, seed=0, dtype=DT)
    X = torch.randn(3, 14, dtype=DT)
    grads = []
    for x in X:
        net.zero_grad()
        net(x[None]).sum().backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    G = torch.stack(grads)
    np.testing.assert_allclose(empirical_ntk(net, X), (G @ G.T).numpy(), rtol=1e-10)


def test_from_kernel_reads_layers_shape_and_stds():
    from sklearn_ntk import NetworkKernel

    kernel = NetworkKernel([nl.Conv((3, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()],
                           input_shape=(4, 4, 1), weight_std=1.3, bias_std=0.2)
    net = from_kernel(kernel, 5, seed=0)
    assert isinstance(net, NTKNetwork) and net.input_shape == (4, 4, 1)
    assert net.body.layers[0].weight_std == 1.3 and net.body.layers[0].bias_std == 0.2


def test_gap_twin_with_circular_padding_is_invariant_to_circular_shifts():
    # exact at every width (the kernel's invariance, here for each finite network)
    conv = [nl.Conv((3, 3), padding="circular"), "relu", nl.Conv((2, 2), padding="circular"),
            "relu"]
    X = torch.randn(3, 5, 6, 2, dtype=DT)
    shifted = torch.roll(X, shifts=(2, -1), dims=(1, 2))
    gap = from_layers(conv + [nl.GlobalAvgPool(), nl.Dense()], (5, 6, 2), 6, seed=0, dtype=DT)
    flat = from_layers(conv + [nl.Flatten(), nl.Dense()], (5, 6, 2), 6, seed=0, dtype=DT)
    torch.testing.assert_close(gap(shifted), gap(X), rtol=1e-12, atol=1e-12)
    assert (flat(shifted) - flat(X)).abs().max() > 1e-3


@pytest.mark.parametrize(
    "layers, shape, match",
    [
        ([nl.Conv((3, 3)), "relu", nl.Dense()], (4, 4, 1), r"per-sample shape \(4, 4, 1\)"),
        ([nl.Conv((5, 5), padding="valid"), nl.Flatten(), nl.Dense()], (4, 4, 1),
         "layer 0 .Conv.: window .* larger than"),
        (["relu"], (4,), "needs a Dense"),
        ([nl.Dense(), nl.FanOut(2), nl.parallel(nl.Dense(), nl.Dense()), nl.FanInSum()], (3,),
         "outside parallel branches"),
        ([nl.FanOut(2), nl.parallel(nl.Dense(), nl.Identity()), nl.FanInSum(), nl.Dense()],
         (3,), "FanInSum: the branches have per-sample shapes"),
        ([nl.FanOut(2), nl.Dense()], (3,), "combine them with FanInSum"),
        ([nl.GlobalAvgPool(), nl.Dense()], (3,), "needs inputs with spatial axes"),
        ([nl.Conv((3,)), nl.Flatten(), nl.Dense()], (4, 4, 1), r"layer 0 \(Conv\): a 1-D window .* shape \(4, 4, 1\) with 2"),
    ],
)
def test_networks_that_cannot_be_built_are_refused_naming_the_problem(layers, shape, match):
    with pytest.raises(ValueError, match=match):
        from_layers(layers, shape, 4)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="unknown layer"):
        from_layers([object(), nl.Dense()], 3, 4)
    with pytest.raises(ValueError, match="width must be >= 1"):
        from_layers([nl.Dense()], 3, 0)
    with pytest.raises(TypeError, match="input_shape"):
        from_layers([nl.Dense()], "3", 4)
    with pytest.raises(ValueError, match="padding must be one of"):
        from_layers([nl.Conv((3,), padding="reflect"), nl.Flatten(), nl.Dense()], (5, 1), 4)
