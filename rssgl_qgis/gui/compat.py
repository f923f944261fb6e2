"""QGIS 3.22 and 3.40 spellings chosen once, so the rest of gui/ is free of version checks.

3.40 deprecates (DeprecationWarning) some calls that 3.22 needs, and 3.22 lacks their replacements; QGIS 4 drops
the old forms (docs/ARCHITECTURE.md, "QGIS 3.22 / 3.40 / 4").
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from qgis.core import Qgis, QgsMapLayerProxyModel
from qgis.PyQt.QtCore import QMetaType, QVariant

__all__ = ["field_type", "layer_filters"]

# QgsField: QGIS 3.38+ takes QMetaType.Type (its QVariant.Type constructor is deprecated there and gone with
# Qt 6 / QGIS 4); QGIS 3.22 accepts only QVariant.Type. Both enums number the types alike, so a field's type()
# compares equal to either on every QGIS 3.
_FIELD_TYPES = (
    {"int": QMetaType.Type.Int, "int64": QMetaType.Type.LongLong, "text": QMetaType.Type.QString}
    if Qgis.QGIS_VERSION_INT >= 33800
    else {"int": QVariant.Int, "int64": QVariant.LongLong, "text": QVariant.String}
)


def field_type(kind: str):
    """The type to give QgsField for ``kind`` ("int", "int64" or "text") on the running QGIS."""
    return _FIELD_TYPES[kind]


def layer_filters(*names: str):
    """QgsMapLayerComboBox.setFilters() argument for filter ``names`` ("RasterLayer", "PointLayer", ...).

    QGIS 3.34+ has Qgis.LayerFilters and warns "setFilters() is deprecated" for QgsMapLayerProxyModel flags;
    an OR of Qgis.LayerFilter members is a plain int there and picks the deprecated overload too, hence the
    explicit Qgis.LayerFilters(...). 3.22 has only QgsMapLayerProxyModel's flags.
    """
    if hasattr(Qgis, "LayerFilters"):
        return Qgis.LayerFilters(reduce(or_, (getattr(Qgis.LayerFilter, n) for n in names)))
    return reduce(or_, (getattr(QgsMapLayerProxyModel, n) for n in names))
