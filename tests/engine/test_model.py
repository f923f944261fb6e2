"""RSSGL network: shapes, config validation, and the fused ConvLSTM against a plain step-by-step one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rssgl_qgis.core.network.model import (
    RSSGL,
    SCENE_KERNELS,
    TIME_STEPS,
    ConvLSTM3d,
    RssglConfig,
    auto_kernel,
)

TINY = {"block_channels": (16, 16, 32, 32), "inner_dim": 16}


@pytest.mark.parametrize(("bands", "classes", "kernel"), [(5, 2, (3, 3, 3)), (13, 7, (3, 5, 5)), (32, 16, (1, 3, 3))])
def test_output_shapes_for_several_band_and_class_counts(bands, classes, kernel):
    model = RSSGL(RssglConfig(bands, classes, kernel=kernel, **TINY))
    logits, z = model(torch.randn(2, bands, 24, 16))
    assert logits.shape == (2, classes, 24, 16)
    assert z.shape == (2, bands, 24, 16)  # the final feature has B channels (statistical loss space)


def test_default_architecture_widths():
    model = RSSGL(RssglConfig(204, 6))
    assert [s.lstm.x_convs[0].out_channels for s in model.stages] == [16, 16, 16, 16]  # 4 gates x 4 hidden
    assert [s.norm.num_channels for s in model.stages] == [96, 128, 192, 256]
    assert model.fuse[-1].out_channels == 204 and model.classifier.out_channels == 6
    assert not hasattr(model, "BasicBlock_list")  # the authors' unused modules are not built


def test_input_that_is_not_padded_is_refused_with_a_clear_message():
    model = RSSGL(RssglConfig(4, 3, **TINY))
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.randn(1, 4, 20, 17))
    with pytest.raises(ValueError, match="expects input"):
        model(torch.randn(1, 5, 16, 16))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "at least 2 classes"),
        ({"kernel": (3, 4, 3)}, "odd"),
        ({"block_channels": (96, 128, 192)}, "4 stage"),
        ({"block_channels": (24, 128, 192, 256)}, "multiple of 16"),
    ],
)
def test_invalid_configs_are_rejected(kwargs, message):
    args = {"in_bands": 10, "num_classes": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        RssglConfig(**args)


def test_config_round_trips_through_a_dict():
    cfg = RssglConfig(17, 5, kernel=(3, 3, 3), **TINY)
    again = RssglConfig.from_dict(cfg.to_dict())
    assert again == cfg and isinstance(again.kernel, tuple)
    with pytest.raises(ValueError, match="Unknown"):
        RssglConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_kernel_presets():
    assert auto_kernel(145, 145) == (3, 3, 3) == SCENE_KERNELS["indian_pines"]
    assert auto_kernel(512, 217) == (3, 5, 5) == SCENE_KERNELS["salinas"]
    assert SCENE_KERNELS["salinas_a"] == (3, 5, 5)


def _reference_convlstm(fused: ConvLSTM3d, x: torch.Tensor) -> torch.Tensor:
    """The authors' formulation: per cell eight separate convs (Wxi, Whi, Wxf, ...), stepping through
    time with the layers interleaved, zero initial states. Weights are sliced out of the fused convs."""
    n, t, d, h, w = x.shape
    cells = []
    for x_conv, h_conv, hid in zip(fused.x_convs, fused.h_convs, fused.hidden, strict=True):
        pad = x_conv.padding
        gates = {}
        for g, name in enumerate("ifog"):
            sl = slice(g * hid, (g + 1) * hid)
            gates[name] = (x_conv.weight[sl], x_conv.bias[sl], h_conv.weight[sl])
        cells.append((gates, pad, hid))
    state = [None] * len(cells)
    out = None
    for step in range(t):
        inp = x[:, step : step + 1]  # (N, 1, D, H, W)
        for layer, (gates, pad, hid) in enumerate(cells):
            if state[layer] is None:
                state[layer] = (inp.new_zeros(n, hid, d, h, w), inp.new_zeros(n, hid, d, h, w))
            hs, cs = state[layer]

            def gate(name, hs=hs, inp=inp, gates=gates, pad=pad):
                wx, b, wh = gates[name]
                return F.conv3d(inp, wx, b, padding=pad) + F.conv3d(hs, wh, None, padding=pad)

            i = torch.sigmoid(gate("i"))
            f = torch.sigmoid(gate("f"))
            c_new = f * cs + i * torch.tanh(gate("g"))
            o = torch.sigmoid(gate("o"))
            h_new = o * torch.tanh(c_new)
            state[layer] = (h_new, c_new)
            inp = h_new
            out = h_new
    return out


@pytest.mark.parametrize("kernel", [(3, 3, 3), (3, 5, 5)])
def test_fused_convlstm_matches_step_by_step_reference(kernel):
    torch.manual_seed(0)
    lstm = ConvLSTM3d(kernel, (4, 4)).double()
    x = torch.randn(2, TIME_STEPS, 6, 9, 7, dtype=torch.float64)
    with torch.no_grad():
        for conv in lstm.h_convs:  # default init is tiny for the recurrent path; make it matter
            conv.weight.mul_(5.0)
        fused = lstm(x)
        ref = _reference_convlstm(lstm, x)
    assert fused.shape == (2, 4, 6, 9, 7)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=0)
    # float32 as used in training, same tolerance
    lstm32 = lstm.float()
    with torch.no_grad():
        torch.testing.assert_close(lstm32(x.float()), _reference_convlstm(lstm32, x.float()), atol=1e-5, rtol=0)


def test_stage_output_is_hidden_channel_major():
    """channel k*C/8 + d of the ConvLSTM output = hidden channel k at spectral depth d."""
    torch.manual_seed(1)
    cfg = RssglConfig(4, 2, **TINY)
    stage = RSSGL(cfg).stages[0]
    x = torch.randn(1, 16, 8, 8)
    h = stage.lstm(x.view(1, TIME_STEPS, 2, 8, 8))  # (1, 4, 2, 8, 8)
    flat = h.reshape(1, -1, 8, 8)
    assert torch.equal(flat[0, 1 * 2 + 1], h[0, 1, 1])
    assert torch.equal(flat[0, 3 * 2 + 0], h[0, 3, 0])


@pytest.mark.parametrize("kernel", [(3, 3, 3), (3, 5, 5)])
def test_every_convlstm_formulation_has_the_same_outputs_and_gradients(kernel):
    """Folded (CUDA), plain 3-D, and 3-D with the folded weight gradient (CPU default) are one function."""
    torch.manual_seed(2)
    x = torch.randn(2, TIME_STEPS, 6, 9, 7, dtype=torch.float64, requires_grad=True)
    lstm = ConvLSTM3d(kernel, (4, 4)).double()
    with torch.no_grad():
        for conv in lstm.h_convs:
            conv.weight.mul_(5.0)
    results = {}
    for mode in (False, True, None):
        lstm.fold_depth = mode
        lstm.zero_grad()
        x.grad = None
        out = lstm(x)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results[mode] = (out.detach(), x.grad.clone(), [p.grad.clone() for p in lstm.parameters()])
    ref_out, ref_gx, ref_gp = results[False]
    for mode in (True, None):
        out, gx, gp = results[mode]
        torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=0)
        torch.testing.assert_close(gx, ref_gx, atol=1e-10, rtol=0)
        for a, b in zip(gp, ref_gp, strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
