"""Bad training inputs: each mistake gets one sentence naming the layer/field/class and what to do,
and costs the user nothing (no output file appears, the input files are not modified).

The cases run through ``workflow.train_from_files``, the code path Processing and the dock share.
Cases that must be *accepted* (samples in another CRS, whole-number float fields, text fields,
NULLs) stop the run with ``should_stop`` at the first training iteration: everything up to the
network (reading, rasterising, checks, split) has then run, in a fraction of a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from rssgl_qgis.core.errors import Cancelled, RssglError
from rssgl_qgis.core.training.classifier import TrainingParams
from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.io.samples import labels_from_raster, labels_from_vector
from rssgl_qgis.workflows.train import MIN_CLASS_PIXELS, train_from_files

from .helpers import (
    BLOCKS,
    WAVELENGTHS,
    block_labels,
    block_polygon_wkt,
    class_features,
    scene_cube,
    sha256,
    snapshot,
    write_raster,
    write_samples,
)


class Run:
    """One training attempt into an empty output folder, with the log and the input hashes kept."""

    def __init__(self, tmp_path: Path, raster: Path, **samples):
        self.out = tmp_path / "out"
        self.out.mkdir()
        self.raster = raster
        self.samples = samples
        self.inputs = [raster, *(Path(v) for k, v in samples.items() if k in ("samples_vector", "samples_raster"))]
        self.hashes = {p: sha256(p) for p in self.inputs}
        self.logs: list[tuple[str, str]] = []
        self.stop_calls = 0

    def should_stop(self) -> bool:
        """Stop at the engine's first check (the first training iteration): everything before the network
        has run. The workflow's own phase checks (io.outputs.checkpoint) are let through."""
        if not sys._getframe(1).f_globals.get("__name__", "").startswith("rssgl_qgis.core"):
            return False
        self.stop_calls += 1
        return True

    def __call__(self):
        return train_from_files(
            str(self.raster),
            **{k: str(v) if isinstance(v, Path) else v for k, v in self.samples.items()},
            params=TrainingParams(iterations=1, device="cpu"),
            model_out=str(self.out / "model.rssgl"),
            report_out=str(self.out / "report.html"),
            classification_out=str(self.out / "classes.tif"),
            should_stop=self.should_stop,
            log=lambda level, message: self.logs.append((level, message)),
        )

    def error(self) -> str:
        """Run, expect a user error; return its message after checking nothing was left behind."""
        with pytest.raises(ValueError) as info:
            self()
        self.check_nothing_left()
        return str(info.value)

    def reaches_training(self) -> None:
        """Run, expect the inputs to be accepted: the run reaches the network and is cancelled there."""
        with pytest.raises(Cancelled):
            self()
        assert self.stop_calls == 1
        self.check_nothing_left()

    def warnings(self) -> list[str]:
        return [m for level, m in self.logs if level == "warning"]

    def check_nothing_left(self) -> None:
        assert snapshot(self.out) == {}, "an output file was left behind"
        for path, digest in self.hashes.items():
            assert sha256(path) == digest, f"the input {path.name} was modified"


@pytest.fixture
def raster(tmp_path) -> Path:
    return write_raster(tmp_path / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)


def _vector(tmp_path, features, name="samples.gpkg", **kwargs) -> Path:
    return write_samples(tmp_path / name, features, **kwargs)


# ------------------------------------------------------------------------------------- CRS / extent
def test_samples_in_another_crs_give_the_same_labels_and_train(tmp_path, raster):
    native = _vector(tmp_path, class_features(), name="utm.gpkg")
    lonlat = _vector(tmp_path, class_features(), name="wgs84.gpkg", epsg=4326)
    info = raster_info(raster)
    expected = block_labels()
    np.testing.assert_array_equal(labels_from_vector(native, None, "class_id", info).labels, expected)
    np.testing.assert_array_equal(labels_from_vector(lonlat, None, "class_id", info).labels, expected)
    Run(tmp_path, raster, samples_vector=lonlat, class_field="class_id").reaches_training()


def test_samples_that_do_not_overlap_the_raster(tmp_path, raster):
    far = {v: (c0 + 500, r0, c1 + 500, r1) for v, (c0, r0, c1, r1) in BLOCKS.items()}  # 5 km east
    samples = _vector(tmp_path, class_features(far))
    message = Run(tmp_path, raster, samples_vector=samples, class_field="class_id").error()
    assert message == (
        f"None of the 4 feature(s) of layer 'samples' overlap the raster '{raster}'. Check that the samples belong "
        "to this raster and that the layer's CRS is set correctly."
    )


def test_samples_partly_outside_are_dropped_with_a_count(tmp_path, raster):
    features = class_features() + [(block_polygon_wkt((600, 0, 606, 6)), {"class_id": 1, "class_name": "water"})]
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, features), class_field="class_id")
    run.reaches_training()
    assert "1 of 5 feature(s) of layer 'samples' lie outside the raster and were dropped." in run.warnings()


# ------------------------------------------------------------------------------------- empty / field
def test_an_empty_sample_layer(tmp_path, raster):
    message = Run(tmp_path, raster, samples_vector=_vector(tmp_path, []), class_field="class_id").error()
    assert message == (
        "Layer 'samples' has no sample with a class in field 'class_id' (0 feature(s)); draw or load samples "
        "with a class first."
    )


def test_a_missing_class_field_lists_the_fields(tmp_path, raster):
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, class_features()), class_field="landcover")
    assert run.error() == (
        "Layer 'samples' has no field 'landcover'; its fields are: class_id, class_name. Choose the field that "
        "holds each sample's class."
    )


def test_no_class_field_chosen(tmp_path, raster):
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, class_features()), class_field="")
    assert "no class field was chosen; pick the field that holds the class values or names" in run.error()


def test_a_class_field_with_only_nulls(tmp_path, raster):
    features = [(wkt, {"class_id": None}) for wkt, _ in class_features()]
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, features), class_field="class_id")
    assert run.error() == (
        "Layer 'samples' has no sample with a class in field 'class_id' (4 feature(s)); draw or load samples "
        "with a class first."
    )


def test_a_text_class_field_with_only_empty_strings(tmp_path, raster):
    features = [(wkt, {"label": "  "}) for wkt, _ in class_features()]
    samples = _vector(tmp_path, features, fields={"label": "String"})
    message = Run(tmp_path, raster, samples_vector=samples, class_field="label").error()
    assert "Layer 'samples' has no sample with a class in field 'label' (4 feature(s))" in message


def test_some_nulls_are_skipped_with_a_warning(tmp_path, raster):
    features = class_features() + [(block_polygon_wkt((10, 10, 13, 13)), {"class_id": None})]
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, features), class_field="class_id")
    run.reaches_training()
    assert "1 feature(s) of layer 'samples' have no value in field 'class_id' and were skipped." in run.warnings()


def test_a_float_field_with_whole_numbers_is_accepted(tmp_path, raster):
    features = [(wkt, {"class_id": float(v["class_id"])}) for wkt, v in class_features()]
    samples = _vector(tmp_path, features, fields={"class_id": "Real"})
    np.testing.assert_array_equal(labels_from_vector(samples, None, "class_id", raster_info(raster)).labels,
                                  block_labels())
    Run(tmp_path, raster, samples_vector=samples, class_field="class_id").reaches_training()


def test_a_float_field_with_fractions_is_refused(tmp_path, raster):
    features = [(wkt, {"class_id": v["class_id"] + (0.5 if v["class_id"] == 3 else 0.0)}) for wkt, v in
                class_features()]
    samples = _vector(tmp_path, features, fields={"class_id": "Real"})
    message = Run(tmp_path, raster, samples_vector=samples, class_field="class_id").error()
    assert message == (
        "Field 'class_id' of layer 'samples' holds non-integer numbers (e.g. 3.5 in feature 3); class values must "
        "be whole numbers. Use an integer or a text field for the classes."
    )


def test_a_text_class_field_maps_names_to_values(tmp_path, raster):
    samples = _vector(tmp_path, class_features(), fields={"class_id": "Integer", "class_name": "String"})
    result = labels_from_vector(samples, None, "class_name", raster_info(raster))
    # Sorted names -> 1..N: forest 1, soil 2, urban 3, water 4.
    assert result.class_names == ["forest", "soil", "urban", "water"]
    remap = np.array([0, 4, 1, 2, 3])
    np.testing.assert_array_equal(result.labels, remap[block_labels()])
    Run(tmp_path, raster, samples_vector=samples, class_field="class_name").reaches_training()


@pytest.mark.parametrize("value", [0, -3])
def test_zero_or_negative_class_values(tmp_path, raster, value):
    features = class_features()
    features[1] = (features[1][0], {"class_id": value, "class_name": "bad"})
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, features), class_field="class_id")
    assert run.error() == (
        f"Field 'class_id' of layer 'samples' has class value {value} (feature 2); class values must be positive "
        "integers because 0 means 'unlabelled'. Renumber the classes from 1."
    )


# ------------------------------------------------------------------------------------- classes
def test_only_one_class(tmp_path, raster):
    features = [f for f in class_features() if f[1]["class_id"] == 2]
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, features), class_field="class_id")
    assert run.error() == (
        "Training needs at least 2 classes but the samples hold only 'forest' (value 2); add samples of other "
        "classes."
    )


def test_a_class_below_the_minimum_pixel_count_is_named(tmp_path, raster):
    blocks = dict(BLOCKS)
    blocks[3] = (10, 11, 12, 13)  # 2 x 2 = 4 pixels < MIN_CLASS_PIXELS
    assert MIN_CLASS_PIXELS == 5
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, class_features(blocks)), class_field="class_id")
    assert run.error() == (
        "Each class needs at least 5 training pixels; too few for 'soil' (value 3: 4 pixels). Draw larger or more "
        "samples for these classes, or remove them from the samples."
    )


def test_polygons_smaller_than_a_pixel(tmp_path, raster):
    # A 0.3 x 0.3 pixel square inside each sample's first pixel, away from its centre (0.5, 0.5).
    slivers = [(f"POLYGON(({_x(c0, 0.6)} {_y(r0, 0.9)},{_x(c0, 0.9)} {_y(r0, 0.9)},{_x(c0, 0.9)} {_y(r0, 0.6)},"
                f"{_x(c0, 0.6)} {_y(r0, 0.6)},{_x(c0, 0.6)} {_y(r0, 0.9)}))", values)
               for (_, values), (c0, r0, _, _) in zip(class_features(), BLOCKS.values(), strict=True)]
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, slivers), class_field="class_id")
    assert run.error() == (
        "The samples of layer 'samples' overlap the raster but cover no pixel centre; draw larger polygons (at "
        "least one pixel across) or use points."
    )


def _x(col: int, frac: float) -> float:
    return 600000.0 + (col + frac) * 10.0


def _y(row: int, frac: float) -> float:
    return 4100000.0 - (row + frac) * 10.0


# ------------------------------------------------------------------------------------- label raster
def _label_raster(tmp_path, labels, name="labels.tif", **kwargs) -> Path:
    return write_raster(tmp_path / name, labels[None].astype(np.float32), gdal_type="Byte", nodata=0, **kwargs)


@pytest.mark.parametrize(
    "grid, reason",
    [
        ({"size": 20}, "it is 20 x 20 pixels but the raster is 24 x 24"),
        ({"origin": (600015.0, 4100000.0)}, "its geotransform (600015, 10, 0, 4100000, 0, -10) differs "
                                            "from the raster's (600000, 10, 0, 4100000, 0, -10) by more "
                                            "than half a pixel"),
        ({"epsg": 32611}, "its CRS (WGS 84 / UTM zone 11N) differs from the raster's (WGS 84 / UTM zone 10N)"),
    ],
    ids=["size", "shifted", "crs"],
)
def test_a_label_raster_on_another_grid(tmp_path, raster, grid, reason):
    size = grid.pop("size", 24)
    labels = block_labels(size=24)[:size, :size]
    label_path = _label_raster(tmp_path, labels, **grid)
    message = Run(tmp_path, raster, samples_raster=label_path).error()
    assert message == (
        f"The label raster '{label_path}' is not on the grid of '{raster}': {reason}. Resample it onto the raster's "
        "grid (e.g. with Raster > Align Rasters) or rasterise the samples again."
    )


def test_a_label_raster_on_the_same_grid_is_accepted(tmp_path, raster):
    label_path = _label_raster(tmp_path, block_labels())
    np.testing.assert_array_equal(labels_from_raster(label_path, raster_info(raster)).labels, block_labels())
    Run(tmp_path, raster, samples_raster=label_path).reaches_training()


def test_both_or_neither_sample_source(tmp_path, raster):
    label_path = _label_raster(tmp_path, block_labels())
    vector = _vector(tmp_path, class_features())
    both = Run(tmp_path, raster, samples_raster=label_path, samples_vector=vector, class_field="class_id").error()
    assert both == ("Give the training samples either as a vector layer with a class field or as a label raster "
                    "(got both).")


# ------------------------------------------------------------------------------------- nodata / NaN
@pytest.mark.parametrize("kind", ["nan", "nodata"])
def test_samples_on_nodata_pixels_are_ignored_with_a_count(tmp_path, kind, raster):
    cube = scene_cube()
    c0, r0, c1, r1 = BLOCKS[1]
    cube[2, r0:r0 + 2, c0:c1] = np.nan if kind == "nan" else -9999.0  # 2 rows of class 1 invalid in one band
    path = write_raster(tmp_path / f"{kind}.tif", cube, wavelengths=WAVELENGTHS,
                        nodata=None if kind == "nan" else -9999.0)
    run = Run(tmp_path, path, samples_vector=_vector(tmp_path, class_features()), class_field="class_id")
    run.reaches_training()
    lost = 2 * (c1 - c0)
    assert f"{lost} training pixel(s) lie on nodata/NaN pixels of the raster and were ignored." in run.warnings()


@pytest.mark.parametrize("kind", ["nan", "nodata"])
def test_a_class_entirely_on_nodata_is_named(tmp_path, kind):
    cube = scene_cube()
    c0, r0, c1, r1 = BLOCKS[4]
    cube[:, r0:r1, c0:c1] = np.nan if kind == "nan" else -9999.0
    path = write_raster(tmp_path / f"{kind}.tif", cube, nodata=None if kind == "nan" else -9999.0)
    run = Run(tmp_path, path, samples_vector=_vector(tmp_path, class_features()), class_field="class_id")
    message = run.error()
    assert message.startswith("Each class needs at least 5 training pixels; too few for")
    assert "'urban'" in message and "Draw larger or more samples for these classes" in message


def test_a_raster_that_is_all_nodata(tmp_path):
    cube = np.full((4, 24, 24), -9999.0, dtype=np.float32)
    path = write_raster(tmp_path / "empty.tif", cube, nodata=-9999.0)
    run = Run(tmp_path, path, samples_vector=_vector(tmp_path, class_features()), class_field="class_id")
    assert run.error() == ("No band of the raster 'empty.tif' holds a usable value (every band is flagged bad, or "
                           "nodata, NaN or one constant value everywhere); check the raster's nodata setting and its "
                           "bad-band list.")


def test_a_raster_gdal_cannot_read(tmp_path):
    bogus = tmp_path / "scene.tif"
    bogus.write_text("not a raster")
    run = Run(tmp_path, bogus, samples_vector=_vector(tmp_path, class_features()), class_field="class_id")
    message = run.error()
    assert message.startswith(f"Cannot open raster '{bogus}':")
    assert message.endswith("Check the path and that it is a raster GDAL can read.")


def test_the_sample_layer_is_not_a_vector_file(tmp_path, raster):
    run = Run(tmp_path, raster, samples_vector=raster, class_field="class_id")
    message = run.error()
    assert message.startswith(f"Cannot open the sample layer '{raster}':")
    assert "Choose a vector file (GeoPackage, shapefile, GeoJSON, ...) that holds the training samples." in message


def test_inputs_are_never_opened_for_writing(tmp_path, raster, monkeypatch):
    """Belt and braces beside the hashes: no GDAL update-mode open of the user's raster."""
    opened = []
    real_open = gdal.Open

    def spy(path, *args):
        opened.append((str(path), args))
        return real_open(path, *args)

    monkeypatch.setattr(gdal, "Open", spy)
    Run(tmp_path, raster, samples_vector=_vector(tmp_path, class_features()), class_field="class_id"
        ).reaches_training()
    assert opened and all(args in ((), (gdal.GA_ReadOnly,)) for _, args in opened)


def test_training_errors_are_rssgl_errors(tmp_path, raster):
    """The Processing and dock layers turn RssglError (a ValueError) into the user's message."""
    features = [f for f in class_features() if f[1]["class_id"] == 2]
    with pytest.raises(RssglError):
        Run(tmp_path, raster, samples_vector=_vector(tmp_path, features), class_field="class_id")()


def test_a_geopackage_with_several_layers_asks_which(tmp_path, raster):
    path = tmp_path / "project.gpkg"
    write_samples(path, class_features(), layer="fields_2023")
    write_samples(path, class_features(), layer="fields_2024")
    run = Run(tmp_path, raster, samples_vector=path, class_field="class_id")
    assert run.error() == (f"'{path}' holds 2 layers (fields_2023, fields_2024); choose the layer with the "
                           "samples.")


def test_a_layer_name_that_does_not_exist(tmp_path, raster):
    path = write_samples(tmp_path / "project.gpkg", class_features(), layer="fields_2023")
    run = Run(tmp_path, raster, samples_vector=path, samples_layer="fields_2022", class_field="class_id")
    assert run.error() == f"'{path}' has no layer 'fields_2022'; its layers are: fields_2023."


# ------------------------------------------------------------------------------------- warnings reach the user
def test_every_sample_warning_reaches_the_log_the_result_and_the_report(tmp_path, raster):
    """NULL classes, features without geometry, features outside the raster, overlapping classes and
    pixels on nodata are each reported: in the log (Processing feedback / the dock), in
    TrainResult.warnings and as a note in the training report."""
    import html

    c0, r0, _, _ = BLOCKS[1]
    features = class_features() + [
        (block_polygon_wkt((10, 10, 13, 13)), {"class_id": None}),  # NULL class
        (None, {"class_id": 4}),  # no geometry
        (block_polygon_wkt((500, 0, 506, 6)), {"class_id": 3}),  # outside the raster
        (block_polygon_wkt((c0, r0, c0 + 2, r0 + 2)), {"class_id": 2}),  # 4 pixels of class 1 claimed by class 2
    ]
    cube = scene_cube()
    cube[1, 15, 15:21] = np.nan  # one row of class 4 (urban) invalid in one band
    nan_raster = write_raster(tmp_path / "nan.tif", cube, wavelengths=WAVELENGTHS)
    out = tmp_path / "out"
    out.mkdir()
    logs: list[tuple[str, str]] = []
    result = train_from_files(
        str(nan_raster), samples_vector=str(_vector(tmp_path, features)), class_field="class_id",
        params=TrainingParams(iterations=1, device="cpu"), model_out=str(out / "model.rssgl"),
        report_out=str(out / "report.html"), log=lambda level, message: logs.append((level, message)),
    )
    expected = [
        "1 feature(s) of layer 'samples' have no value in field 'class_id' and were skipped.",
        "1 feature(s) of layer 'samples' have no geometry and were skipped.",
        "1 of 8 feature(s) of layer 'samples' lie outside the raster and were dropped.",
        "4 pixel(s) are covered by samples of different classes in layer 'samples' and were left unlabelled; fix "
        "the overlapping polygons to use them.",
        "6 training pixel(s) lie on nodata/NaN pixels of the raster and were ignored.",
    ]
    logged = [message for level, message in logs if level == "warning"]
    report = (out / "report.html").read_text(encoding="utf-8")
    for message in expected:
        assert message in logged
        assert message in result.warnings
        assert html.escape(message, quote=True) in report, f"not in the training report: {message}"


def test_a_class_without_pixels_is_warned_about_before_the_error_names_it(tmp_path, raster):
    tiny = block_polygon_wkt((0, 0, 1, 1)).replace("600010.0", "600004.0")  # 0.4 px wide: covers no pixel centre
    features = class_features() + [(tiny, {"class_id": 5, "class_name": "reed"})]
    run = Run(tmp_path, raster, samples_vector=_vector(tmp_path, features), class_field="class_id")
    message = run.error()
    assert "Class(es) 'reed' cover no pixel centre of the raster." in run.warnings()
    assert message.startswith("Each class needs at least 5 training pixels; too few for 'reed' (value 5: 0 pixels)")
