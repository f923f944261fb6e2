"""Device choice on Apple Silicon: MPS where our network runs, else the CPU with the reason said.

No Mac here: MPS availability and the missing operation are simulated; the network check itself runs on
the CPU to show it exercises the model's forward and backward pass.
"""

from __future__ import annotations

import pytest
import torch

from rssgl_qgis.core.network import device as dev

MISSING = "The operator 'aten::slow_conv3d_forward' is not currently implemented for the MPS device."


@pytest.fixture
def fresh_mps_check(monkeypatch):
    monkeypatch.setattr(dev, "_MPS_CHECK", {})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return dev._MPS_CHECK


def test_auto_takes_mps_when_the_network_runs_there(fresh_mps_check, monkeypatch):
    monkeypatch.setattr(dev, "mps_available", lambda: True)
    monkeypatch.setattr(dev, "_network_on", lambda device: None)
    assert dev.choose_device("auto").type == "mps"
    assert dev.describe_device("mps") == "Apple GPU (MPS)"


def test_a_missing_mps_operation_falls_back_to_the_cpu_and_reports_why(fresh_mps_check, monkeypatch, caplog):
    def missing(device):
        raise NotImplementedError(MISSING + "\nAs a temporary fix, you can set PYTORCH_ENABLE_MPS_FALLBACK=1")

    monkeypatch.setattr(dev, "mps_available", lambda: True)
    monkeypatch.setattr(dev, "_network_on", missing)
    with caplog.at_level("WARNING", logger=dev.__name__):
        assert dev.choose_device("auto").type == "cpu"
    assert "training on the CPU instead" in caplog.text and "slow_conv3d_forward" in caplog.text
    line = dev.describe_device("cpu")  # this line goes into the dock, the log and every report
    assert line.startswith("CPU only (") and "the Apple GPU (MPS) cannot run RSSGL: " + MISSING in line
    calls = []
    monkeypatch.setattr(dev, "_network_on", lambda device: calls.append(device))
    dev.choose_device("auto")
    assert calls == []  # checked once per session


def test_mps_asked_without_an_apple_gpu_is_an_error(fresh_mps_check, monkeypatch):
    monkeypatch.setattr(dev, "mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="no Apple GPU"):
        dev.choose_device("mps")
    assert dev.choose_device("auto").type == "cpu"
    assert dev.describe_device("cpu") == f"CPU only ({torch.get_num_threads()} threads)"


def test_the_network_check_runs_forward_and_backward():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # seconds on a loaded 2-core machine, not tens of seconds
    try:
        dev._network_on(torch.device("cpu"))  # the same code MPS gets; must not raise on the CPU
    finally:
        torch.set_num_threads(threads)
