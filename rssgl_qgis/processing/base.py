"""Shared base of the RSSGL algorithms: translation, help, feedback adapter, error mapping, inputs.

Everything here is cheap to import: QGIS builds every algorithm at start-up (and for every
``qgis_process`` call), so torch and the engine are imported only inside ``processAlgorithm``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..qgis_compat import PARAMETER_FLAG_ADVANCED
from ..resources import icon_path
from . import help as help_texts

GROUP_ID = "hyperspectral"


class FeedbackAdapter:
    """The engine's callables (progress, should_stop, log) on top of a QgsProcessingFeedback.

    The engine reports progress as 0-100 of its own work; ``span`` maps that onto a slice of the
    algorithm's bar, so training (0-90) and the classification after it (90-100) share one bar.
    """

    def __init__(self, feedback: QgsProcessingFeedback | None, span: tuple[float, float] = (0.0, 100.0)) -> None:
        self.feedback = feedback or QgsProcessingFeedback()
        self.span = span
        self._last_text = ""

    def part(self, start: float, end: float) -> FeedbackAdapter:
        """An adapter that maps 0-100 onto [start, end] of this adapter's span."""
        lo, hi = self.span
        width = hi - lo
        return FeedbackAdapter(self.feedback, (lo + width * start / 100.0, lo + width * end / 100.0))

    def progress(self, percent: float, message: str = "") -> None:
        lo, hi = self.span
        self.feedback.setProgress(lo + (hi - lo) * max(0.0, min(100.0, float(percent))) / 100.0)
        if message and message != self._last_text:
            self._last_text = message
            self.feedback.setProgressText(message)

    def should_stop(self) -> bool:
        return self.feedback.isCanceled()

    def log(self, level: str, message: str) -> None:
        if level == "warning":
            self.feedback.pushWarning(message)
        else:
            self.feedback.pushInfo(message)


class RssglAlgorithm(QgsProcessingAlgorithm):
    """Base of the three RSSGL algorithms.

    Subclasses set ``ALGORITHM_ID`` and implement ``displayName``, ``initAlgorithm`` and
    ``processAlgorithm``. The help string is built from help.py: a description plus one line per
    parameter, so adding a parameter without explaining it fails the help test.
    """

    ALGORITHM_ID = ""

    def __init__(self) -> None:
        super().__init__()
        # Post-processors must outlive processAlgorithm (they run later, on the main thread);
        # QGIS does not own them, so without this reference Python collects them and the
        # layer loads grey.
        self.post_processors: list[Any] = []

    def tr(self, text: str) -> str:
        """Translate ``text`` with the class name as context (what pylupdate5 extracts)."""
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self) -> RssglAlgorithm:  # noqa: N802 (QGIS API name)
        """A fresh instance of the same class (QGIS runs each execution on its own copy)."""
        return type(self)()

    def name(self) -> str:
        """Stable algorithm id inside the provider (``train`` -> ``rssgl:train``); never localised."""
        return self.ALGORITHM_ID

    def group(self) -> str:
        """Localised group name shown in the Toolbox."""
        return self.tr("Hyperspectral classification")

    def groupId(self) -> str:  # noqa: N802 (QGIS API name)
        """Stable group id; never localised."""
        return GROUP_ID

    def icon(self) -> QIcon:
        return QIcon(icon_path())

    def svgIconPath(self) -> str:  # noqa: N802 (QGIS API name)
        return icon_path()

    def helpUrl(self) -> str:  # noqa: N802 (QGIS API name)
        return help_texts.HELP_URL

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API name)
        """First sentence of the description (the Toolbox tooltip)."""
        text = help_texts.descriptions()[self.ALGORITHM_ID]
        return text.split(". ")[0].rstrip(".") + "."

    def parameterExplanations(self) -> dict[str, str]:  # noqa: N802 (house style: camelCase like QGIS)
        """Parameter name -> explanation for this algorithm (localised)."""
        return help_texts.parameter_help()[self.ALGORITHM_ID]

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API name)
        """Description, then each parameter's label in bold with its explanation (HTML, localised)."""
        explanations = self.parameterExplanations()
        lines = [f"<p>{help_texts.descriptions()[self.ALGORITHM_ID]}</p>"]
        definitions: Iterable[Any] = list(self.parameterDefinitions()) + list(self.outputDefinitions())
        seen = set()
        for definition in definitions:
            if definition.name() in seen or definition.name() not in explanations:
                continue
            seen.add(definition.name())
            lines.append(f"<p><b>{definition.description()}</b>: {explanations[definition.name()]}</p>")
        return "".join(lines)

    # ------------------------------------------------------------------------------------------
    # helpers for subclasses

    @staticmethod
    def advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
        """Mark ``parameter`` as advanced (collapsed in the dialog, still wireable in the modeler)."""
        parameter.setFlags(parameter.flags() | PARAMETER_FLAG_ADVANCED)
        return parameter

    def raster_path(self, parameters: dict, name: str, context: QgsProcessingContext,
                    label: str, required: bool = True) -> str | None:
        """The file path of a raster parameter; GDAL reads it directly (no copy, any size)."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            if required:
                raise QgsProcessingException(self.tr("The parameter '{}' needs a raster layer.").format(label))
            return None
        return self.layer_file(layer, label)

    def layer_file(self, layer: QgsRasterLayer, label: str) -> str:
        """The GDAL file behind a raster layer, or a clear error for non-file rasters (WMS, ...)."""
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                self.tr("'{}' is a '{}' layer; RSSGL reads rasters through GDAL files. Save the layer as a "
                        "GeoTIFF (Export > Save As) and use that file.").format(layer.name(), layer.providerType()))
        source = layer.source()
        return source

    def vector_file(self, parameters: dict, name: str, context: QgsProcessingContext,
                    feedback: QgsProcessingFeedback) -> tuple[str, str] | None:
        """(path, layer name) of a vector parameter as a file OGR can read, or None when not given.

        Memory layers, selections ("Selected features only") and other non-file sources are
        exported by QGIS to a temporary GeoPackage first, so io.samples only ever sees files.
        """
        if parameters.get(name) is None:
            return None
        source = self.parameterAsSource(parameters, name, context)
        if source is None:
            return None
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, name, context, ["gpkg", "shp", "geojson", "sqlite"], "gpkg", feedback)
        if not path:
            raise QgsProcessingException(self.tr("Could not read the vector layer given for '{}'.").format(name))
        path = path.split("|")[0]
        return path, layer_name or ""

    def run_engine(self, call: Callable[[], Any], feedback: QgsProcessingFeedback) -> Any:
        """Run engine code and return its result.

        Engine ValueError/RuntimeError/OSError become QgsProcessingException with the engine's sentence
        (it already says what was expected, found and what to do). A cancelled run ends as cancelled,
        the Processing way: a QgsProcessingException, so qgis_process exits non-zero and a model stops,
        instead of an empty success a script cannot tell from a result. Outputs need no clean-up here:
        the workflows write temporary files and replace the outputs only at the end (io.outputs), so a
        failed or cancelled run leaves every file at the output paths as it was.
        """
        from ..core.errors import Cancelled

        try:
            return call()
        except Cancelled as error:
            raise QgsProcessingException(self.tr("Canceled: no output was written.")) from error
        except MemoryError as error:
            if str(error):
                message = self.tr("Not enough memory: {}. Close other programs, or use a smaller raster or fewer "
                                  "optional outputs.").format(error)
            else:  # a bare MemoryError() from numpy/torch has no text of its own
                message = self.tr("Not enough memory to finish. Close other programs, or use a smaller raster or "
                                  "fewer optional outputs.")
            raise QgsProcessingException(message) from error
        except (ValueError, RuntimeError, OSError) as error:
            raise QgsProcessingException(str(error)) from error
