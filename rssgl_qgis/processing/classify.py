"""Processing algorithm ``rssgl:classify`` ("Classify with RSSGL")."""

from __future__ import annotations

import os
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
)

from ..layer_style import ClassificationPostProcessor, ConfidencePostProcessor, attach_post_processor
from ..qgis_compat import LAYER_RASTER
from .base import FeedbackAdapter, RssglAlgorithm


class ClassifyRssglAlgorithm(RssglAlgorithm):
    """Classify a raster with a trained .rssgl model into a styled class map (+ confidence, probabilities)."""

    ALGORITHM_ID = "classify"

    INPUT = "INPUT"
    MODEL = "MODEL"
    MASK = "MASK"
    SCENE_STATISTICS = "SCENE_STATISTICS"
    OUTPUT = "OUTPUT"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"

    def displayName(self) -> str:  # noqa: N802 (QGIS API name)
        """Localised name in the Toolbox."""
        return self.tr("Classify with RSSGL")

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802 (QGIS API name)
        """Declare raster, model file, optional mask and the three outputs."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Hyperspectral raster")))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, self.tr("RSSGL model file"), extension="rssgl"))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.MASK, self.tr("Mask (polygons or raster)"), optional=True))
        self.addParameter(self.advanced(QgsProcessingParameterBoolean(
            self.SCENE_STATISTICS, self.tr("Whole-scene statistics across tiles (seamless; slower on large rasters)"),
            defaultValue=True)))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Classification")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, self.tr("Confidence"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, self.tr("Class probabilities"), optional=True, createByDefault=False))

    def checkParameterValues(self, parameters: dict, context: QgsProcessingContext) -> tuple[bool, str]:  # noqa: N802
        """Reject a missing or unreadable model file before anything runs."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        path = self.parameterAsFile(parameters, self.MODEL, context)
        if path and not os.path.isfile(path):
            return False, self.tr("The model file '{}' does not exist; choose a .rssgl file written by "
                                  "'Train RSSGL'.").format(path)
        if path:
            try:
                from ..core.modelfile import read_metadata
            except ImportError:  # no torch: processAlgorithm explains how to install it
                return True, ""
            try:
                read_metadata(path)  # header only: cheap, and never unpickles anything
            except (ValueError, OSError) as error:
                return False, str(error)
        return True, ""

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,  # noqa: N802
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Load the model, rasterise a vector mask if any, classify tile by tile, attach styles."""
        try:
            from ..core.training.classifier import RssglClassifier
            from ..io.classify_raster import ClassifyOutputs, classify_raster
            from ..io.outputs import Output, OutputTransaction, checkpoint
            from ..io.vector_mask import rasterize_mask
        except ImportError as error:  # torch missing or broken
            raise QgsProcessingException(
                self.tr("The RSSGL engine could not be loaded ({}). Install PyTorch for the Python that QGIS "
                        "uses (the RSSGL dock offers to do it).").format(error)) from error

        raster = self.raster_path(parameters, self.INPUT, context, self.tr("Hyperspectral raster"))
        model_path = self.parameterAsFile(parameters, self.MODEL, context)
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context) or None
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context) or None
        # io.outputs' rule, before any work (the mask's rasterisation included): paths checked now, files
        # written to temporary names, the outputs replaced together only when all are finished
        transaction = self.run_engine(lambda: OutputTransaction(
            [Output("classification output", out, "geotiff", styled=True),
             Output("confidence output", confidence, "geotiff"),
             Output("class probabilities output", probabilities, "geotiff")],
            {"raster": raster, "model file": model_path}), feedback)
        scene_statistics = self.parameterAsBoolean(parameters, self.SCENE_STATISTICS, context)

        mask_path = None
        mask_layer = self.parameterAsLayer(parameters, self.MASK, context)
        if mask_layer is not None:
            if mask_layer.type() == LAYER_RASTER:
                mask_path = self.layer_file(mask_layer, mask_layer.name())
            else:
                vector = self.vector_file(parameters, self.MASK, context, feedback) if self.parameterAsSource(
                    parameters, self.MASK, context) is not None else None
                if vector is None:
                    raise QgsProcessingException(self.tr("The mask '{}' is neither a raster nor a vector layer.")
                                                 .format(mask_layer.name()))
                mask_path = QgsProcessingUtils.generateTempFilename("rssgl_mask.tif")
                self.run_engine(lambda: rasterize_mask(vector[0], vector[1], raster, mask_path), feedback)
                feedback.pushInfo(self.tr("Mask: pixels whose centre lies inside '{}'.").format(mask_layer.name()))

        adapter = FeedbackAdapter(feedback)

        def run():
            checkpoint("loading the model", adapter.should_stop)
            feedback.setProgressText(self.tr("Loading the model"))
            classifier = RssglClassifier.load(model_path)
            feedback.pushInfo(self.tr("Model: {} bands, classes {}; running on {}.").format(
                classifier.n_bands_, ", ".join(f"{v} {n}" for v, n in zip(
                    classifier.classes_.tolist(), classifier.class_names_, strict=True)),
                classifier.device_description_))
            if classifier.spectral_only:
                feedback.pushInfo(self.tr("The model file holds the spectral model only (stage one, RSSGL not "
                                          "trained): each pixel is classified on its own."))
            checkpoint("classifying", adapter.should_stop)
            classify_raster(
                classifier, raster, ClassifyOutputs(*(path and transaction.path(path)
                                                      for path in (out, confidence, probabilities))),
                mask_path=mask_path, progress=adapter.progress, should_stop=adapter.should_stop, log=adapter.log,
                **({} if scene_statistics else {"scene_passes": 0}))
            checkpoint("committing", adapter.should_stop)
            transaction.commit()

        def run_in_user_terms():
            try:
                run()
            except (ValueError, RuntimeError) as error:
                transaction.raise_in_user_terms(error)  # messages name the user's paths, not temporary files

        with transaction:
            self.run_engine(run_in_user_terms, feedback)
        attach_post_processor(self, context, out, ClassificationPostProcessor(), self.tr("RSSGL classification"))
        attach_post_processor(self, context, confidence, ConfidencePostProcessor(), self.tr("RSSGL confidence"))
        return {self.OUTPUT: out, self.OUTPUT_CONFIDENCE: confidence, self.OUTPUT_PROBABILITIES: probabilities}
