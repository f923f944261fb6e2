"""Processing algorithm ``rssgl:accuracy`` ("Assess accuracy")."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ..qgis_compat import FIELD_ANY, SOURCE_VECTOR_POINT, SOURCE_VECTOR_POLYGON
from .base import FeedbackAdapter, RssglAlgorithm


class AssessAccuracyAlgorithm(RssglAlgorithm):
    """Accuracy of a classification against reference samples: HTML + CSV reports and OA/kappa outputs."""

    ALGORITHM_ID = "accuracy"

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    REFERENCE_RASTER = "REFERENCE_RASTER"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_CSV = "OUTPUT_CSV"
    OVERALL_ACCURACY = "OVERALL_ACCURACY"
    KAPPA = "KAPPA"

    def displayName(self) -> str:  # noqa: N802 (QGIS API name)
        """Localised name in the Toolbox."""
        return self.tr("Assess accuracy")

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802 (QGIS API name)
        """Declare the classification, the reference (vector + field or raster) and the reports."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Classification")))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.REFERENCE, self.tr("Reference samples (polygons or points)"),
            [SOURCE_VECTOR_POLYGON, SOURCE_VECTOR_POINT], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.REFERENCE_FIELD, self.tr("Reference class field"), parentLayerParameterName=self.REFERENCE,
            type=FIELD_ANY, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE_RASTER, self.tr("Reference as a label raster"), optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, self.tr("Accuracy report (HTML)"), self.tr("HTML files (*.html)")))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, self.tr("Accuracy table (CSV)"), self.tr("CSV files (*.csv)"), optional=True,
            createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, self.tr("Overall accuracy")))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, self.tr("Kappa")))

    def checkParameterValues(self, parameters: dict, context: QgsProcessingContext) -> tuple[bool, str]:  # noqa: N802
        """Exactly one reference source, and a field with a vector reference."""
        has_vector = parameters.get(self.REFERENCE) not in (None, "")
        has_raster = parameters.get(self.REFERENCE_RASTER) not in (None, "")
        if has_vector == has_raster:
            return False, self.tr("Give the reference either as a vector layer ('Reference samples') or as a "
                                  "label raster ('Reference as a label raster'), not both or neither.")
        if has_vector and not parameters.get(self.REFERENCE_FIELD):
            return False, self.tr("Choose the 'Reference class field' of the reference samples.")
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,  # noqa: N802
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Compare, write the reports; return their paths, OA and kappa."""
        from ..workflows.assess import assess_accuracy

        classification = self.raster_path(parameters, self.INPUT, context, self.tr("Classification"))
        vector = self.vector_file(parameters, self.REFERENCE, context, feedback)
        reference_raster = self.raster_path(parameters, self.REFERENCE_RASTER, context,
                                            self.tr("Reference as a label raster"), required=False)
        field = self.parameterAsString(parameters, self.REFERENCE_FIELD, context) or None
        match_names = False
        if vector is not None:
            source = self.parameterAsSource(parameters, self.REFERENCE, context)
            index = source.fields().lookupField(field or "")
            if index < 0:
                raise QgsProcessingException(self.tr("The reference layer has no field '{}'.").format(field))
            match_names = not source.fields().at(index).isNumeric()
            if match_names:
                feedback.pushInfo(self.tr("'{}' is a text field: reference classes are matched to the "
                                          "classification's class names.").format(field))
        html_out = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        csv_out = self.parameterAsFileOutput(parameters, self.OUTPUT_CSV, context) or None
        adapter = FeedbackAdapter(feedback)
        result = self.run_engine(lambda: assess_accuracy(
            classification, reference_vector=vector[0] if vector else None,
            reference_layer=vector[1] if vector else None, reference_field=field if vector else None,
            reference_raster=reference_raster, match_names=match_names, html_out=html_out, csv_out=csv_out,
            log=adapter.log, should_stop=adapter.should_stop), feedback)
        summary = result.summary
        feedback.setProgress(100)
        return {
            self.OUTPUT_HTML: html_out,
            self.OUTPUT_CSV: csv_out,
            self.OVERALL_ACCURACY: float(summary["oa"]),
            self.KAPPA: float(summary["kappa"]),
        }
