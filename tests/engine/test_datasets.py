"""Scene loaders (.mat, picked by shape) and the reproduction CLI (smoke test on a random cube)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from rssgl_qgis.core.data.datasets import SCENES, load_ground_truth, load_mat_array, load_scene
from rssgl_qgis.workflows import reproduce

DATA = Path("/work/shared/data")
HAS_SALINAS_A = (DATA / "salinas_a" / "SalinasA_corrected.mat").is_file()


def _fake_salinas_a(folder: Path) -> None:
    """Files named like the originals but with other variable names, as copies in the wild have."""
    rng = np.random.default_rng(0)
    gt = np.zeros((83, 86), np.uint8)
    gt[:40, :40], gt[:40, 40:], gt[40:, :40], gt[40:, 40:] = 1, 10, 12, 14
    scipy.io.savemat(folder / "salinasa_GT.mat", {"labels": gt, "meta": np.arange(3)})
    scipy.io.savemat(folder / "SalinasA_corrected.mat", {"X": rng.integers(0, 900, (83, 86, 204)).astype(np.int16)})


def test_arrays_are_picked_by_shape_and_transposed_to_bands_first(tmp_path):
    _fake_salinas_a(tmp_path)
    scene = load_scene("salinas_a", tmp_path)
    assert scene.cube.shape == (204, 83, 86) and scene.cube.dtype == np.float32
    raw = scipy.io.loadmat(tmp_path / "SalinasA_corrected.mat")["X"]
    np.testing.assert_array_equal(scene.cube[:, 5, 7], raw[5, 7, :])
    np.testing.assert_array_equal(scene.class_values, [1, 10, 12, 14])
    assert scene.class_names[1] == "Corn_senesced_green_weeds" and len(scene.class_colors) == 4


def test_missing_or_wrong_files_give_clear_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="SalinasA_gt.mat"):
        load_ground_truth("salinas_a", tmp_path)
    scipy.io.savemat(tmp_path / "SalinasA_gt.mat", {"a": np.zeros((10, 10))})
    with pytest.raises(ValueError, match="83x86"):
        load_ground_truth("salinas_a", tmp_path)
    scipy.io.savemat(tmp_path / "two.mat", {"a": np.zeros((4, 4, 2)), "b": np.zeros((4, 4, 3))})
    with pytest.raises(ValueError, match="exactly one 3-D array"):
        load_mat_array(tmp_path / "two.mat", 3)
    with pytest.raises(ValueError, match="Unknown scene"):
        load_scene("pavia_centre", tmp_path)


def test_random_cube_has_the_scene_shape(tmp_path):
    _fake_salinas_a(tmp_path)
    (tmp_path / "SalinasA_corrected.mat").unlink()
    with pytest.raises(FileNotFoundError, match="--random-cube"):
        load_scene("salinas_a", tmp_path)
    scene = load_scene("salinas_a", tmp_path, random_cube=True)
    assert scene.cube.shape == (SCENES["salinas_a"].bands, 83, 86)


@pytest.mark.skipif(not HAS_SALINAS_A, reason="real Salinas-A not available")
def test_real_salinas_a():
    scene = load_scene("salinas_a", DATA)
    assert scene.cube.shape == (204, 83, 86)
    np.testing.assert_array_equal(scene.class_values, [1, 10, 11, 12, 13, 14])
    assert int((scene.labels > 0).sum()) == 5348
    assert scene.cube.min() == -9 and scene.cube.max() == 8373  # SOURCES.md: int16 values -9..8373


def test_reproduce_cli_smoke(tmp_path, capsys):
    _fake_salinas_a(tmp_path)
    out = tmp_path / "r.json"
    argv = [
        "--scene", "salinas_a", "--data", str(tmp_path), "--seeds", "2333,1", "--selection", "paper",
        "--iterations", "1", "--device", "cpu", "--random-cube", "--block-channels", "16,16,16,16",
        "--inner-dim", "16", "--quiet", "--out", str(out),
    ]
    assert reproduce.main(argv) == 0
    printed = capsys.readouterr().out
    assert "paper protocol (selection on test pixels)" in printed and "mean" in printed
    result = json.loads(out.read_text())
    assert [r["seed"] for r in result["runs"]] == [2333, 1]
    assert result["runs"][0]["train_counts"] == [16, 19, 18, 20]  # ceil(1% of 1600, 1840, 1720, 1978)
    assert result["random_cube"] is True and set(result["summary"]) >= {"oa_mean", "oa_std", "per_class_mean"}
    assert reproduce.main([*argv[:4], "--seeds", ""]) == 2
