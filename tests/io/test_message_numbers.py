"""Values reaching user messages print as people write them, under numpy 1 and numpy 2 alike (issue 16).

numpy 2 reprs scalars as ``np.float64(600015.0)``; a message that puts a list, tuple or repr of numpy values
into an f-string shows that. ``Np2Int`` / ``Np2Str`` repr like numpy 2 on any numpy, so these tests fail for
a raw repr on the 3.22 suite (numpy 1) too, not only in the QGIS 3.40 root (numpy 2).
"""

from __future__ import annotations

import numpy as np
import pytest

from rssgl_qgis.core.text import names_text, numbers_text
from rssgl_qgis.io.raster import RasterInfo
from rssgl_qgis.io.raster_write import classification_dtype
from rssgl_qgis.io.samples import grid_mismatch


class Np2Int(int):
    def __repr__(self) -> str:
        return f"np.int64({int(self)})"


class Np2Str(str):
    def __repr__(self) -> str:
        return f"np.str_({str.__repr__(self)})"


def _info(geotransform) -> RasterInfo:
    return RasterInfo(path="a.tif", width=10, height=10, bands=1, dtype="Byte", geotransform=geotransform,
                      crs_wkt="", nodata=[None], band_names=["b1"])


def test_grid_mismatch_names_both_geotransforms_in_plain_numbers():
    base = tuple(np.float64(v) for v in (600000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0))
    shifted = tuple(np.float64(v) for v in (600045.0, 30.0, 0.0, 5000000.0, 0.0, -30.0))
    text = grid_mismatch(_info(base), _info(shifted))
    assert text == ("its geotransform (600045, 30, 0, 5000000, 0, -30) differs from the raster's "
                    "(600000, 30, 0, 5000000, 0, -30) by more than half a pixel")


def test_class_value_error_lists_plain_integers():
    with pytest.raises(ValueError) as caught:
        classification_dtype([Np2Int(3), np.int64(0), Np2Int(1)])
    message = str(caught.value)
    assert "got (0, 1, 3)" in message and "np." not in message


def test_names_and_number_lists_never_show_numpy_reprs():
    assert names_text([Np2Str("water"), np.str_("forest")]) == "'water', 'forest'"
    assert numbers_text([Np2Int(10), np.int64(11), np.float64(12.5)]) == "(10, 11, 12.5)"
