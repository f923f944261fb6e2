"""Numbers in messages read the same under numpy 1 and numpy 2 (no ``np.float64(...)``)."""

from __future__ import annotations

import numpy as np

from rssgl_qgis.core.text import number_text, numbers_text


def test_numpy_scalars_print_as_plain_numbers():
    assert number_text(np.float64(600015.0)) == "600015"
    assert number_text(np.float32(0.5)) == "0.5"
    assert number_text(np.int64(-3)) == "-3"
    assert number_text(-1e-9) == "0"
    assert number_text(30.000000001) == "30"
    assert number_text(2.1234567) == "2.123457"
    assert number_text("n/a") == "n/a"
    text = numbers_text(np.array([600015.0, 30.0, 0.0, 5000015.5, 0.0, -30.0]))
    assert text == "(600015, 30, 0, 5000015.5, 0, -30)" and "np." not in text
