"""Model file: round trip, atomic write, and rejection of files that are not RSSGL models (no unpickling)."""

from __future__ import annotations

import builtins
import json
import pickle
import struct

import pytest
import torch

from rssgl_qgis.core.modelfile import FORMAT_VERSION, MAGIC_KEY, load_model, read_metadata, save_model


def _state():
    return {"a.weight": torch.randn(3, 4), "b.bias": torch.arange(5, dtype=torch.float32)}


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    state = _state()
    meta = {"class_values": [1, 10, 14], "class_names": ["a", "b", "ü"], "history": [{"loss": 0.5}]}
    path = tmp_path / "m.rssgl"
    save_model(path, state, meta)
    loaded, got = load_model(path)
    assert got == {**meta, "format_version": FORMAT_VERSION}
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    assert read_metadata(path) == got
    assert [p.name for p in tmp_path.iterdir()] == ["m.rssgl"]  # no temporary file left


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "m.rssgl"
    save_model(path, _state(), {"v": 1})
    with pytest.raises(ValueError, match="JSON"):
        save_model(path, _state(), {"bad": object()})
    assert read_metadata(path)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.rssgl"]
    with pytest.raises(ValueError, match="does not exist"):
        save_model(tmp_path / "missing" / "m.rssgl", _state(), {})


class _Evil:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["pickle", "torch_zip"])
def test_crafted_pickles_are_rejected_without_running_code(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.rssgl"
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"w": _Evil(marker)}, protocol=2))
    else:
        torch.save({"w": _Evil(marker)}, path)
    assert not marker.exists()
    with pytest.raises(ValueError, match="not an RSSGL model file"):
        load_model(path)
    assert not marker.exists(), "loading the file executed code from its pickle"


def test_truncated_files_are_a_clear_error(tmp_path):
    path = tmp_path / "m.rssgl"
    save_model(path, _state(), {"v": 1})
    data = path.read_bytes()
    for cut in (4, 20, len(data) - 7):
        (tmp_path / "t.rssgl").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated"):
            load_model(tmp_path / "t.rssgl")


def test_newer_format_and_foreign_safetensors_are_refused(tmp_path):
    from safetensors.torch import save_file

    newer = tmp_path / "newer.rssgl"
    save_file(_state(), newer, metadata={MAGIC_KEY: json.dumps({"format_version": FORMAT_VERSION + 1})})
    with pytest.raises(ValueError, match="update the RSSGL plugin"):
        load_model(newer)
    foreign = tmp_path / "foreign.safetensors"
    save_file(_state(), foreign)
    with pytest.raises(ValueError, match="without RSSGL metadata"):
        load_model(foreign)
    text = tmp_path / "notes.rssgl"
    text.write_text("hello world, not a model")
    with pytest.raises(ValueError, match="not an RSSGL model file"):
        load_model(text)
    with pytest.raises(ValueError, match="does not exist"):
        load_model(tmp_path / "nope.rssgl")


def test_a_header_length_with_low_byte_0x80_still_loads(tmp_path):
    """The first byte of a safetensors file is the header length's low byte; 0x80 is not a pickle here."""
    path = tmp_path / "m.rssgl"
    for pad in range(300):
        save_model(path, _state(), {"pad": "x" * pad})
        if struct.unpack("<Q", path.read_bytes()[:8])[0] % 256 == 0x80:
            break
    else:
        pytest.fail("could not produce a header length ending in 0x80")
    assert load_model(path)[1]["pad"] == "x" * pad
