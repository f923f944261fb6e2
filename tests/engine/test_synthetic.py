"""The synthetic scene: deterministic, plausible, and hard per pixel but easy with spatial context."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rssgl_qgis.core.data.synthetic import (
    CLASS_LIBRARY,
    WATER_VAPOUR_WINDOWS,
    make_synthetic_scene,
    pixel_baselines,
    synthetic_wavelengths,
)

SMALL = {"height": 64, "width": 80, "bands": 48, "n_classes": 6}


@pytest.fixture(scope="module")
def scene():
    return make_synthetic_scene(3, **SMALL)


@pytest.fixture(scope="module")
def default_scene():
    return make_synthetic_scene(0)


def _band(scene, nm):
    return int(np.abs(scene.wavelengths - nm).argmin())


def test_same_seed_same_scene_bit_for_bit(scene):
    again = make_synthetic_scene(3, **SMALL)
    assert np.array_equal(scene.cube, again.cube)
    assert np.array_equal(scene.labels, again.labels)
    assert np.array_equal(scene.polygon_labels, again.polygon_labels)
    assert len(scene.train_polygons) == len(again.train_polygons)
    for a, b in zip(scene.train_polygons, again.train_polygons, strict=True):
        assert a.class_value == b.class_value and np.array_equal(a.vertices, b.vertices)


def test_other_seed_other_scene(scene):
    other = make_synthetic_scene(4, **SMALL)
    assert not np.array_equal(scene.labels, other.labels)
    assert not np.allclose(scene.cube, other.cube)


def test_shapes_types_and_classes(scene):
    assert scene.cube.shape == (48, 64, 80) and scene.cube.dtype == np.float32
    assert scene.labels.shape == (64, 80) and scene.labels.dtype == np.int32
    assert scene.class_values.tolist() == [1, 2, 3, 4, 5, 6]
    assert scene.class_names == [spec.name for spec in CLASS_LIBRARY[:6]]
    assert len(scene.class_colors) == 6 and all(len(c) == 3 for c in scene.class_colors)
    present = set(np.unique(scene.labels).tolist())
    assert present == {0, 1, 2, 3, 4, 5, 6}, "every class is drawn, roads are unlabelled (0)"
    assert (scene.labels == 0).mean() < 0.2
    assert np.all(scene.field_ids[scene.labels == 0] == -1)


def test_values_are_reflectance_like(default_scene):
    cube = default_scene.cube
    assert np.isfinite(cube).all()
    assert -0.05 < cube.min() and cube.max() < 1.0
    assert 0.05 < float(np.median(cube)) < 0.4


def test_wavelengths_are_aviris_like_and_skip_water_vapour():
    wl = synthetic_wavelengths(120)
    assert wl[0] == pytest.approx(400.0) and wl[-1] == pytest.approx(2500.0)
    assert np.all(np.diff(wl) > 0)
    for lo, hi in WATER_VAPOUR_WINDOWS:
        assert not np.any((wl > lo) & (wl < hi))
    noisy = synthetic_wavelengths(120, water_bands="noisy")
    assert np.any((noisy > 1360) & (noisy < 1440))
    with pytest.raises(ValueError, match="water_bands"):
        synthetic_wavelengths(10, water_bands="drop")


def test_noisy_water_vapour_bands_carry_almost_no_signal():
    s = make_synthetic_scene(1, 48, 48, 100, 5, water_bands="noisy")
    vapour = s.cube[_band(s, 1890)]
    clear = s.cube[_band(s, 1650)]
    assert abs(float(vapour.mean())) < 0.2 * float(clear.mean())
    assert float(vapour.std()) > 0.005  # noise dominates


def test_spectra_are_physically_plausible(default_scene):
    s = default_scene
    mean = {name: s.cube[:, s.labels == value].mean(axis=1)
            for value, name in zip(s.class_values, s.class_names, strict=True)}
    red, nir, green, blue = (_band(s, nm) for nm in (670, 860, 550, 450))
    for crop in ("Corn", "Soybean"):
        assert mean[crop][nir] > 4 * mean[crop][red], "green vegetation has a red edge"
        assert mean[crop][green] > mean[crop][red] and mean[crop][green] > mean[crop][blue]
    assert mean["Water"][blue] > mean["Water"][nir] and mean["Water"][nir] < 0.03
    clay = mean["Clay soil"]
    continuum = 0.5 * (clay[_band(s, 2120)] + clay[_band(s, 2290)])
    assert clay[_band(s, 2205)] < 0.9 * continuum, "clay soil shows the Al-OH absorption at 2200 nm"
    assert mean["Sandy soil"][nir] > mean["Clay soil"][nir]
    wheat = mean["Wheat (ripening)"]
    assert wheat[red] > 2 * mean["Corn"][red], "ripening wheat has lost chlorophyll"


def test_mixed_pixels_at_parcel_boundaries():
    sharp = make_synthetic_scene(5, 64, 64, 30, 5, psf_sigma=0.0, noise=0.0)
    blurred = make_synthetic_scene(5, 64, 64, 30, 5, psf_sigma=1.0, noise=0.0)
    edge = np.zeros((64, 64), bool)
    edge[:, 1:] |= sharp.field_ids[:, 1:] != sharp.field_ids[:, :-1]
    interior = ~edge & (sharp.labels > 0)
    diff = np.abs(sharp.cube - blurred.cube).mean(axis=0)
    assert diff[edge].mean() > 2 * diff[interior].mean()


def test_int16_storage_and_nodata_edge():
    s = make_synthetic_scene(2, 48, 48, 30, 5, dtype="int16", nodata_edge=12)
    assert s.cube.dtype == np.int16 and s.scale == pytest.approx(1e-4)
    assert not s.valid.all() and s.valid[:, -1].all()
    assert np.all(s.cube[:, ~s.valid] == s.nodata)
    assert np.all(s.labels[~s.valid] == 0)
    refl = s.reflectance
    assert np.isnan(refl[:, ~s.valid]).all()
    f = make_synthetic_scene(2, 48, 48, 30, 5, nodata_edge=12)
    assert np.allclose(refl[:, s.valid], f.cube[:, f.valid], atol=1e-4)


def test_training_polygons_lie_inside_one_field_of_their_class(default_scene):
    s = default_scene
    assert {p.class_value for p in s.train_polygons} == set(s.class_values.tolist())
    labelled = s.polygon_labels > 0
    assert labelled.sum() > 5 * len(s.class_values)
    assert np.array_equal(s.polygon_labels[labelled], s.labels[labelled])
    assert labelled.mean() < 0.05, "training polygons are a small sample of the scene"
    for polygon in s.train_polygons:
        assert polygon.vertices.shape[1] == 2 and len(polygon.vertices) >= 3


def test_per_pixel_classifiers_fall_short_but_parcel_context_separates():
    s = make_synthetic_scene(0, 128, 128, 60, 8)
    r = pixel_baselines(s, percent=5.0, seed=0)
    chance = 1.0 / 8
    for key in ("ncm", "gnb"):
        assert chance + 0.4 < r[key] < 0.95, f"{key}={r[key]:.3f}: a per-pixel baseline must be far from perfect"
    assert r["gnb_parcel"] > 0.98 and r["gnb_parcel"] > r["gnb"] + 0.05


def test_default_scene_generates_fast():
    best = min(_timed(lambda: make_synthetic_scene(7)) for _ in range(2))
    assert best < 2.0, f"default scene took {best:.2f} s (budget 1 s on an idle machine)"


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"height": 4}, "8..2048"), ({"bands": 5}, "10..400"), ({"n_classes": 11}, "2..10"),
     ({"dtype": "uint8"}, "dtype"), ({"nodata_edge": 500}, "nodata_edge")],
)
def test_bad_arguments_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_synthetic_scene(0, **{**SMALL, **kwargs})


def test_baselines_can_use_a_given_training_split(scene):
    r = pixel_baselines(scene, train_labels=scene.polygon_labels)
    assert r["n_train"] == int((scene.polygon_labels > 0).sum())
    assert r["n_test"] == int((scene.labels > 0).sum()) - r["n_train"]
    assert 0.0 < r["gnb"] <= 1.0
