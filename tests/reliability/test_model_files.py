"""Untrusted model files: truncated, not a model, from a newer plugin, crafted pickles, damaged metadata.

Users exchange ``.rssgl`` files by e-mail and download them from the web, so loading one must never
run code and must answer every damaged file with a ValueError that says what is wrong and what to
do. The crafted-pickle tests prove that no code ran: the payload would create a marker file and set
an environment variable, and a control test shows that the very same bytes do exactly that when
they ARE unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from rssgl_qgis.core.modelfile import FORMAT_VERSION, MAGIC_KEY, load_model, read_metadata
from rssgl_qgis.core.training.classifier import RssglClassifier

from .helpers import snapshot, tiny_cube, train_tiny_classifier

NOT_A_MODEL = "is not an RSSGL model file"
WHAT_TO_DO = "Choose a .rssgl file written by this plugin's 'Train RSSGL' algorithm"
PICKLE_REFUSED = "PyTorch .pt/.pth checkpoints are refused because loading them can run code"
PWNED_ENV = "RSSGL_TEST_PAYLOAD_RAN"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.rssgl"
    train_tiny_classifier().save(path)
    return path


@pytest.fixture(scope="module")
def model_parts(model_file):
    return load_model(model_file)


def _rewrite(path: Path, state, meta_text: str) -> Path:
    """A safetensors file with the given weights and raw RSSGL metadata text (no validation)."""
    save_file(state, str(path), metadata={MAGIC_KEY: meta_text})
    return path


def _both_loaders(path):
    """Load through the low-level reader and the classifier (what Classify and fine-tuning use)."""
    for loader in (load_model, lambda p: RssglClassifier.load(p, device="cpu")):
        with pytest.raises(ValueError) as info:
            loader(path)
        yield str(info.value)


# --------------------------------------------------------------------------- sanity
def test_a_valid_model_file_loads_and_predicts(model_file):
    clf = RssglClassifier.load(model_file, device="cpu")
    cube, labels = tiny_cube()
    assert clf.predict(cube).shape == labels.shape
    assert read_metadata(model_file)["format_version"] == FORMAT_VERSION


# --------------------------------------------------------------------------- truncated
@pytest.mark.parametrize("where", ["empty", "inside length", "inside header", "inside weights", "last byte"])
def test_truncated_model_file_says_copy_it_again(model_file, tmp_path, where):
    data = model_file.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    cut = {
        "empty": 0,
        "inside length": 5,
        "inside header": 8 + header_len // 2,
        "inside weights": 8 + header_len + (len(data) - 8 - header_len) // 2,
        "last byte": len(data) - 1,
    }[where]
    broken = tmp_path / "cut.rssgl"
    broken.write_bytes(data[:cut])
    for message in _both_loaders(broken):
        assert f"The model file '{broken}' is truncated" in message
        assert "save or copy it again" in message


# --------------------------------------------------------------------------- not a model
@pytest.mark.parametrize(
    "content",
    [
        b"class_id,class_name\n1,water\n2,forest\n",  # a CSV picked by mistake
        b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64,  # the first bytes of a little-endian GeoTIFF
        b"\x89HDF\r\n\x1a\n" + b"\x00" * 64,  # an HDF5 / .mat v7.3 file
        struct.pack("<Q", 2**40) + b"{}",  # a header length bomb: must not allocate a terabyte
    ],
    ids=["csv", "geotiff", "hdf5", "header-length-bomb"],
)
def test_a_file_that_is_not_a_model_is_refused(tmp_path, content):
    path = tmp_path / "model.rssgl"
    path.write_bytes(content)
    for message in _both_loaders(path):
        assert f"'{path}' {NOT_A_MODEL}" in message
        assert WHAT_TO_DO in message


def test_a_safetensors_file_without_rssgl_metadata_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    for message in _both_loaders(path):
        assert NOT_A_MODEL in message and "without RSSGL metadata" in message


def test_a_missing_model_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.rssgl"
    for message in _both_loaders(path):
        assert message == f"The model file '{path}' does not exist; check the path."


# --------------------------------------------------------------------------- newer version
def test_a_model_from_a_newer_plugin_asks_for_an_update(model_parts, tmp_path):
    state, meta = model_parts
    path = _rewrite(tmp_path / "future.rssgl", state, json.dumps({**meta, "format_version": FORMAT_VERSION + 1}))
    for message in _both_loaders(path):
        assert (
            f"has format version {FORMAT_VERSION + 1}, newer than this plugin supports ({FORMAT_VERSION}); "
            "update the RSSGL plugin" in message
        )


# --------------------------------------------------------------------------- crafted pickles
class _Payload:
    """Unpickling this runs ``exec``: it writes a marker file and sets an environment variable."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        code = f"open({str(self.marker)!r}, 'w').write('ran'); import os; os.environ[{PWNED_ENV!r}] = '1'"
        return (exec, (code,))


@pytest.fixture
def no_payload_ran(tmp_path, monkeypatch):
    """Yields the marker path; afterwards asserts the payload neither wrote it nor set the variable."""
    monkeypatch.delenv(PWNED_ENV, raising=False)
    marker = tmp_path / "payload_ran.txt"
    yield marker
    assert not marker.exists(), "the crafted file's code ran while loading it"
    assert PWNED_ENV not in os.environ, "the crafted file's code ran while loading it"


def test_control_the_crafted_pickle_runs_code_when_unpickled(tmp_path, monkeypatch):
    """Proves the payload is live, so the tests below would notice if the loader unpickled it."""
    monkeypatch.delenv(PWNED_ENV, raising=False)
    marker = tmp_path / "control.txt"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.read_text() == "ran" and os.environ.get(PWNED_ENV) == "1"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_crafted_pickle_is_refused_without_running_it(no_payload_ran, tmp_path, protocol):
    path = tmp_path / "model.rssgl"
    path.write_bytes(pickle.dumps({"state_dict": _Payload(no_payload_ran)}, protocol=protocol))
    for message in _both_loaders(path):
        assert NOT_A_MODEL in message
        if protocol >= 2:  # protocols 2+ start with the PROTO opcode, recognised by name
            assert "it is a Python pickle" in message and PICKLE_REFUSED in message


@pytest.mark.parametrize("zipfile", [True, False], ids=["torch-zip", "torch-legacy"])
def test_a_crafted_torch_checkpoint_is_refused_without_running_it(no_payload_ran, tmp_path, zipfile):
    path = tmp_path / "model.rssgl"
    torch.save({"state_dict": _Payload(no_payload_ran)}, path, _use_new_zipfile_serialization=zipfile)
    what = "it is a zip archive, e.g. a torch.save checkpoint" if zipfile else "it is a Python pickle"
    for message in _both_loaders(path):
        assert f"'{path}' {NOT_A_MODEL} ({what})" in message and PICKLE_REFUSED in message


def test_a_pickle_hidden_in_the_weights_is_never_unpickled(no_payload_ran, model_parts, tmp_path):
    """A valid safetensors container whose tensor bytes are a pickle: loads as raw bytes, runs nothing."""
    state, meta = model_parts
    blob = pickle.dumps(_Payload(no_payload_ran))
    state = dict(state)
    state["extra.payload"] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    path = _rewrite(tmp_path / "smuggled.rssgl", state, json.dumps(meta))
    loaded, _ = load_model(path)
    assert bytes(loaded["extra.payload"].numpy()) == blob


# --------------------------------------------------------------------------- damaged metadata
def _damage(name: str):
    return {
        "class values missing": lambda m: m.pop("class_values"),
        "more class values than outputs": lambda m: m.update(
            class_values=[1, 2, 3], class_names=["a", "b", "c"], class_colors=[[0, 0, 0]] * 3
        ),
        "band statistics of another band count": lambda m: m.update(band_mean=[0.0], band_std=[1.0]),
        "band count differs from the network": lambda m: m.update(band_count=m["band_count"] + 3),
        "class colours not a list": lambda m: m.update(class_colors=5),
        "training parameters not an object": lambda m: m.update(training_params="fast"),
        "architecture not an object": lambda m: m.update(architecture="abc"),
        "weights of another architecture": lambda m: m["architecture"].update(hidden=[2, 2]),
        "class names of another count": lambda m: m.update(class_names=m["class_names"][:1]),
        "class values out of order": lambda m: m.update(class_values=m["class_values"][::-1]),
        "a band deviation of zero": lambda m: m["band_std"].__setitem__(0, 0.0),
        "a band mean that is not a number": lambda m: m["band_mean"].__setitem__(0, "12"),
        "band count not an integer": lambda m: m["architecture"].update(in_bands=float(m["band_count"])),
        "band widths of another count": lambda m: m.update(band_fwhm=[6.5]),
        "band numbers repeated": lambda m: m.update(band_indices=[1] * m["band_count"]),
    }[name]


@pytest.mark.parametrize(
    "damage",
    [
        "weights of another architecture",
        "class values missing",
        "more class values than outputs",
        "band statistics of another band count",
        "band count differs from the network",
        "class colours not a list",
        "training parameters not an object",
        "architecture not an object",
        "class names of another count",
        "class values out of order",
        "a band deviation of zero",
        "a band mean that is not a number",
        "band count not an integer",
        "band widths of another count",
        "band numbers repeated",
    ],
)
def test_damaged_metadata_is_refused_at_load_time(model_parts, tmp_path, damage):
    """A file whose metadata contradicts its weights must fail when opened, not later with a
    misleading "use the raster the model was trained on" or a bare KeyError/TypeError."""
    state, meta = model_parts
    meta = json.loads(json.dumps(meta))
    _damage(damage)(meta)
    path = _rewrite(tmp_path / "damaged.rssgl", state, json.dumps(meta))
    with pytest.raises(ValueError) as info:
        RssglClassifier.load(path, device="cpu")
    message = str(info.value)
    assert f"The model file '{path}' is damaged or inconsistent" in message
    assert "retrain or use another file" in message


def test_a_model_file_without_band_numbers_or_widths_still_loads(model_parts, tmp_path):
    """Files written before issue 14 have no band_indices / band_fwhm: they load and use every band in order."""
    state, meta = model_parts
    meta = json.loads(json.dumps(meta))
    meta.pop("band_indices", None)
    meta.pop("band_fwhm", None)
    clf = RssglClassifier.load(_rewrite(tmp_path / "old.rssgl", state, json.dumps(meta)), device="cpu")
    assert clf.band_info_["indices"] is None and clf.band_info_["fwhm"] is None
    assert clf.metadata()["band_count"] == meta["band_count"]


@pytest.mark.parametrize(
    "meta_text",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[1, 2]", id="json-list"),
        pytest.param('{"format_version": "1"}', id="version-not-int"),
    ],
)
def test_unreadable_metadata_is_a_clean_value_error(model_parts, tmp_path, meta_text):
    state, _ = model_parts
    path = _rewrite(tmp_path / "bad_meta.rssgl", state, meta_text)
    with pytest.raises(ValueError) as info:
        read_metadata(path)
    assert str(path) in str(info.value) and "damaged" in str(info.value)


def test_refusing_a_file_leaves_the_folder_untouched(tmp_path, no_payload_ran):
    path = tmp_path / "model.rssgl"
    path.write_bytes(pickle.dumps(_Payload(no_payload_ran), protocol=4))
    before = snapshot(tmp_path)
    for _ in _both_loaders(path):
        pass
    assert snapshot(tmp_path) == before


def test_an_architecture_larger_than_its_weights_is_refused_before_building_it(model_parts, tmp_path, monkeypatch):
    from rssgl_qgis.core.network import model as model_module

    state, meta = model_parts
    meta = json.loads(json.dumps(meta))
    bands = 50_000  # harmless here (~30 MB); the same file with 10^7 bands would take gigabytes
    meta["architecture"]["in_bands"] = meta["band_count"] = bands
    meta["band_mean"], meta["band_std"] = [0.0] * bands, [1.0] * bands
    path = _rewrite(tmp_path / "huge.rssgl", state, json.dumps(meta))
    real_init = model_module.RSSGL.__init__

    def guarded_init(self, config):
        assert config.in_bands < 1000, "the network of the file's architecture was allocated before any check"
        real_init(self, config)

    monkeypatch.setattr(model_module.RSSGL, "__init__", guarded_init)
    with pytest.raises(ValueError) as info:
        RssglClassifier.load(path, device="cpu")
    assert f"The model file '{path}' is damaged or inconsistent" in str(info.value)


@pytest.mark.parametrize("part", ["network", "spectral"])
def test_non_finite_weights_are_refused_at_load_time(model_parts, tmp_path, part):
    state, meta = model_parts
    state = {k: v.clone() for k, v in state.items()}
    # the spectral model's weights are float64 (safetensors stores them first); the network's float32
    name = next(k for k, v in state.items()
                if v.is_floating_point() and v.numel() > 1 and k.startswith("spectral.") == (part == "spectral"))
    state[name].view(-1)[0] = float("nan")
    path = _rewrite(tmp_path / "nan.rssgl", state, json.dumps(meta))
    with pytest.raises(ValueError) as info:
        RssglClassifier.load(path, device="cpu")
    where = "the spectral model" if part == "spectral" else name
    assert str(info.value) == (f"The model file '{path}' is damaged or inconsistent (non-finite weights in {where}); "
                               "retrain or use another file.")
