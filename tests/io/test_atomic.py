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


# ------------------------------------------------------------------------------------- issue 31
def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def test_temporary_names_carry_the_writers_pid(tmp_path):
    assert f".tmp-{os.getpid()}-" in os.path.basename(temporary_path_for(tmp_path / "result.tif"))


def test_stale_temporaries_of_dead_processes_are_removed_and_nothing_else(tmp_path):
    from rssgl_qgis.io.atomic import clean_stale_temporaries

    dead, alive = _dead_pid(), os.getpid()
    stale = [f".classes.tmp-{dead}-{'a' * 12}.tif", f".classes.tmp-{dead}-{'a' * 12}.tif.aux.xml",
             f".model.rssgl.tmp-{dead}-{'b' * 12}.x1y2z3.tmp", f".report.html.bak-{dead}-{'c' * 12}",
             f"..classes.tmp-{dead}-{'d' * 12}.tmp-{dead}-{'e' * 12}.tif"]
    kept = [f".classes.tmp-{alive}-{'f' * 12}.tif", ".hidden_by_another_program", "classes.tif",
            f"classes.tmp-{dead}-{'a' * 12}.tif"]  # not hidden: a user's file, whatever its name
    for name in stale + kept:
        (tmp_path / name).write_text(name)
    assert sorted(clean_stale_temporaries(tmp_path)) == sorted(stale)
    assert _listing(tmp_path) == sorted(kept)


def test_a_commit_cut_short_by_a_kill_is_undone_by_the_next_run(tmp_path, monkeypatch):
    """The kill comes after the first rename: the journal lets the next run put the old file back."""
    from rssgl_qgis.io import atomic

    for name, text in (("a.tif", "old a"), ("b.qml", "old b")):
        (tmp_path / name).write_text(text)
    tmp_a, tmp_b, tmp_c = (temporary_path_for(tmp_path / n) for n in ("a.tif", "b.qml", "c.csv"))
    for path, text in ((tmp_a, "new a"), (tmp_b, "new b"), (tmp_c, "new c")):
        with open(path, "w") as f:
            f.write(text)
    real = os.replace

    def killed_after_the_first_rename(src, dst):
        real(src, dst)
        if os.path.basename(os.fspath(dst)) == "c.csv":
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this line runs

    monkeypatch.setattr(os, "replace", killed_after_the_first_rename)
    with pytest.raises(KeyboardInterrupt):
        commit_temporaries([(tmp_c, tmp_path / "c.csv"), (tmp_a, tmp_path / "a.tif"), (tmp_b, tmp_path / "b.qml")])
    monkeypatch.setattr(os, "replace", real)
    assert (tmp_path / "c.csv").read_text() == "new c" and any(n.startswith(".rssgl-commit-") for n in
                                                               os.listdir(tmp_path))
    monkeypatch.setattr(atomic, "_process_alive", lambda pid: False)  # the "killed" writer is this process
    atomic.clean_stale_temporaries(tmp_path)
    assert _listing(tmp_path) == ["a.tif", "b.qml"], "the half-done commit was not undone"
    assert [(tmp_path / n).read_text() for n in ("a.tif", "b.qml")] == ["old a", "old b"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_follow_the_replaced_file_or_the_umask(tmp_path):
    import stat

    (tmp_path / "shared.html").write_text("old")
    (tmp_path / "shared.html").chmod(0o664)
    old_umask = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "shared.html", "new")
        atomic_write_text(tmp_path / "new.html", "new")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(tmp_path / "shared.html").st_mode) == 0o664
    assert stat.S_IMODE(os.stat(tmp_path / "new.html").st_mode) == 0o640
