"""Property-based tests of the model file reader (core/modelfile.py).

A model file is untrusted input. Whatever its bytes, ``load_model`` / ``read_metadata`` must either
return the stored weights and metadata unchanged or raise a ValueError with a message for the user;
any other exception (KeyError, struct.error, UnicodeDecodeError, MemoryError...) is a bug that would
surface in QGIS as a traceback.
"""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rssgl_qgis.core.modelfile import FORMAT_VERSION, MAGIC_KEY, load_model, read_metadata, save_model

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)  # NaN != NaN would make the round-trip comparison meaningless
    | st.text(max_size=20)
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
metadata_dicts = st.dictionaries(st.text(max_size=12), json_values, max_size=8)


def _state() -> dict[str, torch.Tensor]:
    return {"stem.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "head.bias": torch.ones(2)}


def _write_header(path, header_obj, payload: bytes = b"") -> None:
    raw = json.dumps(header_obj).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)


def _loads_or_value_error(path) -> None:
    try:
        load_model(path)
    except ValueError as err:
        assert str(err), "an empty error message tells the user nothing"


def _header_length(path) -> int:
    with open(path, "rb") as fh:
        return struct.unpack("<Q", fh.read(8))[0]


def test_a_header_length_ending_in_0x80_is_not_mistaken_for_a_pickle(tmp_path):
    """0x80 is the pickle PROTO opcode but also the low byte of a header length of 128 mod 256."""
    path = tmp_path / "m.rssgl"
    save_model(path, _state(), {"note": ""})
    filler = (0x80 - _header_length(path)) % 256
    for extra in range(filler, filler + 16):  # the header is padded to 8 bytes: find the exact length
        save_model(path, _state(), {"note": "x" * extra})
        if _header_length(path) % 256 == 0x80:
            break
    assert _header_length(path) % 256 == 0x80
    _, meta = load_model(path)
    assert meta["note"] == "x" * extra


@FAST
@given(meta=metadata_dicts)
def test_random_metadata_round_trips(tmp_path, meta):
    path = tmp_path / "m.rssgl"
    save_model(path, _state(), meta)
    state, loaded = load_model(path)
    assert loaded == {**meta, "format_version": FORMAT_VERSION}
    for key, tensor in _state().items():
        assert torch.equal(state[key], tensor)
    assert [p.name for p in tmp_path.iterdir()] == ["m.rssgl"], "a temporary file was left behind"


def test_non_finite_floats_round_trip(tmp_path):
    path = tmp_path / "m.rssgl"
    save_model(path, _state(), {"val_loss": math.inf, "test_oa": math.nan})
    _, loaded = load_model(path)
    assert loaded["val_loss"] == math.inf and math.isnan(loaded["test_oa"])


def test_metadata_that_is_not_json_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="The model metadata is not JSON-serialisable"):
        save_model(tmp_path / "m.rssgl", _state(), {"device": torch.device("cpu")})
    assert list(tmp_path.iterdir()) == []


@FAST
@given(data=st.binary(max_size=200))
@example(data=b"")
@example(data=struct.pack("<Q", 2**63))
@example(data=struct.pack("<Q", 4) + b"\xff\xfe{}")
def test_random_bytes_are_a_clean_value_error(tmp_path, data):
    path = tmp_path / "random.rssgl"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        load_model(path)


@FAST
@given(position=st.integers(0, 10**6), value=st.integers(0, 255), cut=st.integers(0, 10**6))
def test_corrupted_or_cut_model_files_load_or_fail_cleanly(tmp_path, position, value, cut):
    path = tmp_path / "m.rssgl"
    save_model(path, _state(), {"class_values": [1, 10, 11]})
    data = bytearray(path.read_bytes())
    data[position % len(data)] = value
    path.write_bytes(bytes(data[: max(1, cut % (len(data) + 1))]))
    _loads_or_value_error(path)


# Headers that parse as JSON but are not what a model file holds: random structures everywhere.
header_objects = st.one_of(
    json_values,
    st.builds(lambda meta: {"__metadata__": meta}, json_values),
    st.builds(lambda text: {"__metadata__": {MAGIC_KEY: text}}, st.text(max_size=30)),
    st.builds(lambda tensors: {"__metadata__": {MAGIC_KEY: json.dumps({"format_version": 1})}, **tensors},
              st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=3)),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=header_objects, payload=st.binary(max_size=64))
@example(header={"__metadata__": {MAGIC_KEY: "[1, 2]"}}, payload=b"")
@example(header={"__metadata__": True}, payload=b"")
def test_random_headers_are_a_clean_value_error(tmp_path, header, payload):
    """Random JSON headers: metadata that is a list, tensor tables with junk offsets, and so on."""
    path = tmp_path / "h.rssgl"
    _write_header(path, header, payload)
    try:
        read_metadata(path)
    except ValueError:
        pass
    _loads_or_value_error(path)

