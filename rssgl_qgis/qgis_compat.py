"""The spelling each QGIS takes, chosen once, so that the rest of the plugin runs from QGIS 3.22 (Qt 5) to QGIS 4
(Qt 6) without version checks of its own (docs/QGIS4.md).

QGIS 3.30-3.38 moved many enums into ``Qgis`` and QGIS 4 drops the old ones, while 3.22 has only the old ones.
Each name below is the new member where the running QGIS has it, else the 3.22 member, written through its enum
as PyQt6 would require. The 3.22 branches carry ``# qt6-check: allow`` so that scripts/qt6_check.py (which fails
on every QGIS-3-only spelling) passes them; its test keeps such lines to this module. gui/ and processing/ import
from here; this module imports nothing else of the plugin.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from qgis.core import (
    Qgis,
    QgsColorRampShader,
    QgsEditFormConfig,
    QgsMapLayerProxyModel,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsRasterMinMaxOrigin,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QMetaType, QVariant

try:  # Qt 6 moved QAction to QtGui; QGIS >= 3.34's Qt 5 wrappers have it there too
    from qgis.PyQt.QtGui import QAction
except ImportError:  # QGIS 3.22 (Qt 5)
    from qgis.PyQt.QtWidgets import QAction

__all__ = [
    "FIELD_ANY",
    "FORM_SUPPRESS_ON",
    "GEOMETRY_POINT",
    "GEOMETRY_POLYGON",
    "LAYER_RASTER",
    "NUMBER_DOUBLE",
    "NUMBER_INTEGER",
    "PARAMETER_FLAG_ADVANCED",
    "QAction",
    "RANGE_LIMIT_CUMULATIVE_CUT",
    "SHADER_INTERPOLATED",
    "SOURCE_VECTOR_POINT",
    "SOURCE_VECTOR_POLYGON",
    "WKB_MULTIPOLYGON",
    "WKB_POINT",
    "field_type",
    "layer_filters",
]

# Processing (QGIS >= 3.36: Qgis.Processing*)
if hasattr(Qgis, "ProcessingSourceType"):
    SOURCE_VECTOR_POLYGON = Qgis.ProcessingSourceType.VectorPolygon
    SOURCE_VECTOR_POINT = Qgis.ProcessingSourceType.VectorPoint
    NUMBER_INTEGER = Qgis.ProcessingNumberParameterType.Integer
    NUMBER_DOUBLE = Qgis.ProcessingNumberParameterType.Double
    FIELD_ANY = Qgis.ProcessingFieldParameterDataType.Any
    PARAMETER_FLAG_ADVANCED = Qgis.ProcessingParameterFlag.Advanced
else:
    SOURCE_VECTOR_POLYGON = QgsProcessing.SourceType.TypeVectorPolygon  # qt6-check: allow qgis-moved-enum
    SOURCE_VECTOR_POINT = QgsProcessing.SourceType.TypeVectorPoint  # qt6-check: allow qgis-moved-enum
    NUMBER_INTEGER = QgsProcessingParameterNumber.Type.Integer  # qt6-check: allow qgis-moved-enum
    NUMBER_DOUBLE = QgsProcessingParameterNumber.Type.Double  # qt6-check: allow qgis-moved-enum
    FIELD_ANY = QgsProcessingParameterField.DataType.Any  # qt6-check: allow qgis-moved-enum
    PARAMETER_FLAG_ADVANCED = QgsProcessingParameterDefinition.Flag.FlagAdvanced  # qt6-check: allow qgis-moved-enum

# Geometry and layer types (Qgis.LayerType: QGIS >= 3.30)
if hasattr(Qgis, "WkbType"):
    WKB_MULTIPOLYGON = Qgis.WkbType.MultiPolygon
    WKB_POINT = Qgis.WkbType.Point
    GEOMETRY_POINT = Qgis.GeometryType.Point
    GEOMETRY_POLYGON = Qgis.GeometryType.Polygon
    LAYER_RASTER = Qgis.LayerType.Raster
else:
    from qgis.core import QgsMapLayerType  # qt6-check: allow qgis-moved-enum

    WKB_MULTIPOLYGON = QgsWkbTypes.Type.MultiPolygon  # qt6-check: allow qgis-moved-enum
    WKB_POINT = QgsWkbTypes.Type.Point  # qt6-check: allow qgis-moved-enum
    GEOMETRY_POINT = QgsWkbTypes.GeometryType.PointGeometry  # qt6-check: allow qgis-moved-enum
    GEOMETRY_POLYGON = QgsWkbTypes.GeometryType.PolygonGeometry  # qt6-check: allow qgis-moved-enum
    LAYER_RASTER = QgsMapLayerType.RasterLayer  # qt6-check: allow qgis-moved-enum

# Styles and forms
if hasattr(Qgis, "RasterRangeLimit"):  # not in 3.22, in 3.44
    RANGE_LIMIT_CUMULATIVE_CUT = Qgis.RasterRangeLimit.CumulativeCut
else:
    RANGE_LIMIT_CUMULATIVE_CUT = QgsRasterMinMaxOrigin.Limits.CumulativeCut  # qt6-check: allow qgis-moved-enum
if hasattr(Qgis, "ShaderInterpolationMethod"):  # not in 3.22, in 3.44
    SHADER_INTERPOLATED = Qgis.ShaderInterpolationMethod.Linear
else:
    SHADER_INTERPOLATED = QgsColorRampShader.Type.Interpolated  # qt6-check: allow qgis-moved-enum
if hasattr(Qgis, "AttributeFormSuppression"):  # not in 3.22, in 3.44
    FORM_SUPPRESS_ON = Qgis.AttributeFormSuppression.On
else:
    FORM_SUPPRESS_ON = QgsEditFormConfig.FeatureFormSuppress.SuppressOn  # qt6-check: allow qgis-moved-enum

# QgsField: QGIS 3.38+ takes QMetaType.Type (its QVariant.Type constructor is deprecated there and gone with
# Qt 6 / QGIS 4); QGIS 3.22 accepts only QVariant.Type. Both enums number the types alike, so a field's type()
# compares equal to either on every QGIS 3.
_FIELD_TYPES = (
    {"int": QMetaType.Type.Int, "int64": QMetaType.Type.LongLong, "text": QMetaType.Type.QString}
    if Qgis.QGIS_VERSION_INT >= 33800
    else {
        "int": QVariant.Type.Int,  # qt6-check: allow qvariant-type
        "int64": QVariant.Type.LongLong,  # qt6-check: allow qvariant-type
        "text": QVariant.Type.String,  # qt6-check: allow qvariant-type
    }
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
