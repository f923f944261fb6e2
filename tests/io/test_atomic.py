"""Atomic outputs: success renames, failure leaves neither the temporary file nor a broken target."""

from __future__ import annotations

import os

import pytest

from rssgl_qgis.io.atomic import atomic_output, atomic_write_text, commit_temporaries, temporary_path_for


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_temporary_path_is_hidden_in_same_folder_with_same_extension(tmp_path):
    tmp = temporary_path_for(tmp_path / "result.tif")
    assert os.path.dirname(tmp) == str(tmp_path)
    assert os.path.basename(tmp).startswith(".result.tmp-") and tmp.endswith(".tif")
    assert tmp != temporary_path_for(tmp_path / "result.tif")


def test_success_renames_and_moves_sidecars(tmp_path):
    target = tmp_path / "out.tif"
    with atomic_output(target) as tmp:
        assert not target.exists()
        with open(tmp, "w") as f:
            f.write("new")
        with open(tmp + ".aux.xml", "w") as f:
            f.write("<PAMDataset/>")
    assert target.read_text() == "new"
    assert (tmp_path / "out.tif.aux.xml").read_text() == "<PAMDataset/>"
    assert _listing(tmp_path) == ["out.tif", "out.tif.aux.xml"]


def test_stale_sidecar_of_previous_output_is_removed(tmp_path):
    (tmp_path / "out.tif").write_text("old")
    (tmp_path / "out.tif.aux.xml").write_text("old categories")
    with atomic_output(tmp_path / "out.tif") as tmp, open(tmp, "w") as f:
        f.write("new")
    assert _listing(tmp_path) == ["out.tif"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_leaves_nothing_and_keeps_the_old_file(tmp_path, error):
    target = tmp_path / "out.tif"
    target.write_text("old")
    with pytest.raises(type(error)), atomic_output(target) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        with open(tmp + ".aux.xml", "w") as f:
            f.write("x")
        raise error
    assert _listing(tmp_path) == ["out.tif"]
    assert target.read_text() == "old"


def test_block_that_writes_nothing_is_an_error_not_an_empty_file(tmp_path):
    with pytest.raises(RuntimeError, match="was not written"), atomic_output(tmp_path / "x.tif"):
        pass
    assert _listing(tmp_path) == []


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist. Create it or choose another output path"):
        temporary_path_for(tmp_path / "nope" / "out.tif")


def test_folder_as_target_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="it is a folder"):
        temporary_path_for(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="not writable"):
            temporary_path_for(folder / "out.tif")
    finally:
        folder.chmod(0o700)


def test_atomic_write_text_round_trip_and_overwrite(tmp_path):
    path = tmp_path / "report.html"
    atomic_write_text(path, "<p>Überblick</p>")
    atomic_write_text(path, "<p>second</p>")
    assert path.read_text(encoding="utf-8") == "<p>second</p>"
    assert _listing(tmp_path) == ["report.html"]


def _failing_replace(monkeypatch, name):
    real = os.replace

    def replace(src, dst):
        if os.path.basename(os.fspath(dst)) == name:
            raise OSError(28, "No space left on device", os.fspath(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("failing", ["a.tif", "a.tif.aux.xml", "b.qml"])
def test_group_commit_is_all_or_nothing(tmp_path, monkeypatch, failing):
    for name, text in (("a.tif", "old a"), ("a.tif.aux.xml", "old aux"), ("b.qml", "old b")):
        (tmp_path / name).write_text(text)
    tmp_a, tmp_b = temporary_path_for(tmp_path / "a.tif"), temporary_path_for(tmp_path / "b.qml")
    for path, text in ((tmp_a, "new a"), (tmp_a + ".aux.xml", "new aux"), (tmp_b, "new b")):
        with open(path, "w") as f:
            f.write(text)
    _failing_replace(monkeypatch, failing)
    with pytest.raises(ValueError, match=rf"Cannot write '.*{failing}': No space left on device. Check that the file"):
        commit_temporaries([(tmp_a, tmp_path / "a.tif"), (tmp_b, tmp_path / "b.qml")])
    assert _listing(tmp_path) == ["a.tif", "a.tif.aux.xml", "b.qml"], "no temporary or backup file is left"
    assert [(tmp_path / n).read_text() for n in _listing(tmp_path)] == ["old a", "old aux", "old b"]


def test_group_commit_success_replaces_everything_and_removes_stale_sidecars(tmp_path):
    (tmp_path / "a.tif").write_text("old a")
    (tmp_path / "a.tif.aux.xml").write_text("old aux")
    tmp_a, tmp_b = temporary_path_for(tmp_path / "a.tif"), temporary_path_for(tmp_path / "b.qml")
    for path, text in ((tmp_a, "new a"), (tmp_b, "new b")):
        with open(path, "w") as f:
            f.write(text)
    commit_temporaries([(tmp_a, tmp_path / "a.tif"), (tmp_b, tmp_path / "b.qml")])
    assert _listing(tmp_path) == ["a.tif", "b.qml"]
    assert (tmp_path / "a.tif").read_text() == "new a" and (tmp_path / "b.qml").read_text() == "new b"
