"""Band selections parsed into band numbers (core.data.band_selection): syntax, ranges, the water-vapour preset, errors."""

from __future__ import annotations

import pytest

from rssgl_qgis.core.data.band_selection import select_bands, water_vapour_bands
from rssgl_qgis.core.errors import RssglError

# 224 EnMAP-like band centres from 420 to 2450 nm (about 9.1 nm apart)
WAVELENGTHS = [420.0 + k * (2470.0 - 420.0) / 223 for k in range(224)]


def test_empty_text_keeps_every_band():
    selection = select_bands("", 5)
    assert selection.kept == [1, 2, 3, 4, 5] and selection.dropped == [] and selection.description == "all bands"
    assert select_bands(None, 3).kept == [1, 2, 3]


def test_number_ranges_keep_or_drop():
    keep = select_bands("1-129, 136-224", 224)
    assert keep.kept == list(range(1, 130)) + list(range(136, 225)) and keep.dropped == list(range(130, 136))
    drop = select_bands("drop: 130-135; 1", 224)
    assert drop.dropped == [1] + list(range(130, 136))
    assert select_bands("Keep 3", 5).kept == [3]
    assert select_bands("DROP 2 - 4", 5).kept == [1, 5]


def test_wavelength_ranges_pick_band_centres_inside():
    wl = [500.0, 510.0, 520.0, 530.0, 540.0]
    assert select_bands("505-530 nm", 5, wl).kept == [2, 3, 4]
    assert select_bands("drop 500 nm - 510 nm, 540nm", 5, wl).kept == [3, 4]
    assert select_bands("1, 530-540 nm", 5, wl).kept == [1, 4, 5]  # numbers and wavelengths mix


def test_water_vapour_preset_drops_the_three_windows():
    dropped = water_vapour_bands(WAVELENGTHS)
    assert dropped and all(1340 <= WAVELENGTHS[b - 1] <= 1460 or 1790 <= WAVELENGTHS[b - 1] <= 1960
                           or WAVELENGTHS[b - 1] >= 2450 for b in dropped)
    kept = [b for b in range(1, 225) if b not in dropped]
    assert not any(1340 <= WAVELENGTHS[b - 1] <= 1460 for b in kept)
    selection = select_bands("", 224, WAVELENGTHS, drop_water_vapour=True)
    assert selection.dropped == dropped
    assert selection.description == "drop the water-vapour windows (1340-1460 nm, 1790-1960 nm, beyond 2450 nm)"
    combined = select_bands("drop 1-3", 224, WAVELENGTHS, drop_water_vapour=True)
    assert combined.dropped == [1, 2, 3] + dropped
    assert combined.description.startswith("'drop 1-3'; drop the water-vapour windows")


@pytest.mark.parametrize(("text", "wavelengths", "water", "message"), [
    ("1-300", None, False, r"^The band selection '1-300' lies outside the raster's bands: they are numbered 1 to 224\."),
    ("0", None, False, r"^The band selection '0' lies outside the raster's bands"),
    ("10-5", None, False, r"^The band selection range '10-5' runs backwards"),
    ("1-5, abc", None, False, r"^The band selection cannot read 'abc'; write band numbers .* for example '1-129, 136-224'"),
    ("1.5", None, False, r"^The band selection '1.5' is not a band number"),
    ("drop", None, False, r"^The band selection 'drop' lists no band"),
    ("400-500 nm", None, False, r"^The band selection '400-500 nm' is a wavelength range, but the raster does not "
                                r"record its band wavelengths"),
    ("", None, True, r"^Dropping the water-vapour bands needs the raster's band wavelengths, and this raster does not "
                     r"record them"),
    ("drop 1-224", None, False, r"^The band selection \('drop 1-224'\) leaves no band of the 224 to train on"),
])
def test_bad_selections_say_what_to_write(text, wavelengths, water, message):
    with pytest.raises(RssglError, match=message):
        select_bands(text, 224, wavelengths, drop_water_vapour=water)


def test_true_colour_bands_are_the_nearest_to_640_550_470_nm():
    from rssgl_qgis.core.data.band_selection import true_colour_bands

    assert true_colour_bands(WAVELENGTHS) == (25, 15, 6)  # 640.6, 548.7, 466.0 nm
    assert [round(WAVELENGTHS[b - 1]) for b in true_colour_bands(WAVELENGTHS)] == [641, 549, 466]
    assert true_colour_bands(None) is None
    assert true_colour_bands([1000.0, 1500.0, 2000.0]) is None  # no visible band
