"""Processing algorithm ``rssgl:train`` ("Train RSSGL")."""

from __future__ import annotations

import os
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..layer_style import ClassificationPostProcessor, ConfidencePostProcessor, attach_post_processor
from ..qgis_compat import FIELD_ANY, NUMBER_DOUBLE, NUMBER_INTEGER, SOURCE_VECTOR_POINT, SOURCE_VECTOR_POLYGON
from ..workflows.train import MAX_CV_FOLDS, RSSGL_STAGES
from .base import FeedbackAdapter, RssglAlgorithm

#: DEVICE enum order -> engine device names.
DEVICES = ("auto", "cuda", "cpu")
#: TRAINING_INPUT enum order -> TrainingParams.training_input.
TRAINING_INPUTS = ("auto", "whole", "windows")


class TrainRssglAlgorithm(RssglAlgorithm):
    """Train an RSSGL model on a raster and samples; write the model and optional outputs."""

    ALGORITHM_ID = "train"

    INPUT = "INPUT"
    SAMPLES = "SAMPLES"
    CLASS_FIELD = "CLASS_FIELD"
    SAMPLES_RASTER = "SAMPLES_RASTER"
    VALIDATION_SHARE = "VALIDATION_SHARE"
    ITERATIONS = "ITERATIONS"
    LEARNING_RATE = "LEARNING_RATE"
    KERNEL = "KERNEL"
    STAT_LOSS_WEIGHT = "STAT_LOSS_WEIGHT"
    SEED = "SEED"
    DEVICE = "DEVICE"
    TRAINING_INPUT = "TRAINING_INPUT"
    PATIENCE = "PATIENCE"
    CROSS_VALIDATION = "CROSS_VALIDATION"
    RSSGL_STAGE = "RSSGL_STAGE"
    BANDS = "BANDS"
    DROP_WATER_VAPOUR = "DROP_WATER_VAPOUR"
    CROSS_VALIDATED_OA = "CROSS_VALIDATED_OA"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_CLASSIFICATION = "OUTPUT_CLASSIFICATION"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_REPORT = "OUTPUT_REPORT"

    def displayName(self) -> str:  # noqa: N802 (QGIS API name)
        """Localised name in the Toolbox."""
        return self.tr("Train RSSGL")

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802 (QGIS API name)
        """Declare the inputs (samples as vector or raster), advanced training settings and outputs."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Hyperspectral raster")))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.SAMPLES, self.tr("Training samples (polygons or points)"),
            [SOURCE_VECTOR_POLYGON, SOURCE_VECTOR_POINT], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Class field"), parentLayerParameterName=self.SAMPLES,
            type=FIELD_ANY, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.SAMPLES_RASTER, self.tr("Training samples as a label raster"), optional=True))
        share = QgsProcessingParameterNumber(
            self.VALIDATION_SHARE, self.tr("Validation share (0 = train on every sample pixel)"),
            NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0, maxValue=0.5)
        share.setMetadata({"widget_wrapper": {"decimals": 2}})
        self.addParameter(self.advanced(share))
        self.addParameter(self.advanced(QgsProcessingParameterNumber(
            self.ITERATIONS, self.tr("Iterations"), NUMBER_INTEGER,
            defaultValue=600, minValue=1, maxValue=100000)))
        rate = QgsProcessingParameterNumber(
            self.LEARNING_RATE, self.tr("Learning rate"), NUMBER_DOUBLE,
            defaultValue=0.005, minValue=1e-6, maxValue=1.0)
        rate.setMetadata({"widget_wrapper": {"decimals": 6}})
        self.addParameter(self.advanced(rate))
        self.addParameter(self.advanced(QgsProcessingParameterEnum(
            self.KERNEL, self.tr("ConvLSTM kernel"),
            options=[self.tr("Auto (from the raster size)"), "3x3x3", "3x5x5"], defaultValue=0)))
        self.addParameter(self.advanced(QgsProcessingParameterNumber(
            self.STAT_LOSS_WEIGHT, self.tr("Statistical-loss weight"), NUMBER_DOUBLE,
            defaultValue=0.001, minValue=0.0, maxValue=10.0)))
        self.addParameter(self.advanced(QgsProcessingParameterNumber(
            self.SEED, self.tr("Random seed"), NUMBER_INTEGER,
            defaultValue=2333, minValue=0)))
        self.addParameter(self.advanced(QgsProcessingParameterEnum(
            self.DEVICE, self.tr("Device"), options=[self.tr("Auto (GPU when available)"), "CUDA", "CPU"],
            defaultValue=0)))
        self.addParameter(self.advanced(QgsProcessingParameterEnum(
            self.TRAINING_INPUT, self.tr("Training input"),
            options=[self.tr("Auto (the whole raster when it fits the device's memory, else windows)"),
                     self.tr("The whole raster at every iteration"),
                     self.tr("Windows around the samples (memory independent of the raster size)")],
            defaultValue=0)))
        self.addParameter(self.advanced(QgsProcessingParameterNumber(
            self.PATIENCE, self.tr("Early-stopping patience (epochs)"), NUMBER_INTEGER,
            defaultValue=5, minValue=1, maxValue=10000)))
        self.addParameter(self.advanced(QgsProcessingParameterNumber(
            self.CROSS_VALIDATION, self.tr("Cross-validation folds over whole samples (0 = none)"),
            NUMBER_INTEGER, defaultValue=3, minValue=0, maxValue=MAX_CV_FOLDS)))
        # RSSGL_STAGES order; default "auto": RSSGL trains where it is fast (a CUDA GPU); on a CPU the spectral
        # model's map (stage one) comes in seconds, and "Always" trains RSSGL there too (issue 29)
        self.addParameter(self.advanced(QgsProcessingParameterEnum(
            self.RSSGL_STAGE, self.tr("RSSGL stage"),
            options=[self.tr("Automatic: on a GPU only (else the spectral model's map in seconds)"),
                     self.tr("Always (minutes on a CPU)"),
                     self.tr("Never: spectral model only")],
            defaultValue=RSSGL_STAGES.index("auto"))))
        self.addParameter(self.advanced(QgsProcessingParameterString(
            self.BANDS, self.tr("Band selection (e.g. '1-129, 136-224', 'drop 130-135', '400-1340 nm'; empty = all)"),
            defaultValue="", optional=True)))
        self.addParameter(self.advanced(QgsProcessingParameterBoolean(
            self.DROP_WATER_VAPOUR, self.tr("Drop the water-vapour bands (1340-1460 nm, 1790-1960 nm, beyond 2450 nm)"),
            defaultValue=False)))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, self.tr("Model file"), self.tr("RSSGL model (*.rssgl)")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CLASSIFICATION, self.tr("Classification of the training raster"), optional=True,
            createByDefault=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, self.tr("Confidence"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Training report"), self.tr("HTML files (*.html)"), optional=True,
            createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber(
            self.CROSS_VALIDATED_OA, self.tr("Cross-validated overall accuracy")))

    def checkParameterValues(self, parameters: dict, context: QgsProcessingContext) -> tuple[bool, str]:  # noqa: N802
        """Exactly one sample source, and a class field with vector samples (checked before running)."""
        has_vector = parameters.get(self.SAMPLES) not in (None, "")
        has_raster = parameters.get(self.SAMPLES_RASTER) not in (None, "")
        if has_vector == has_raster:
            return False, self.tr("Give the training samples either as a vector layer ('Training samples') or as "
                                  "a label raster ('Training samples as a label raster'), not both or neither.")
        if has_vector and not parameters.get(self.CLASS_FIELD):
            return False, self.tr("Choose the 'Class field' of the training samples.")
        folds = self.parameterAsInt(parameters, self.CROSS_VALIDATION, context)
        if folds == 1:
            return False, self.tr("Cross-validation needs at least 2 folds; choose 0 for none, or 2 to {}.").format(
                MAX_CV_FOLDS)
        model_out = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        if model_out and not model_out.lower().endswith(".rssgl"):
            # the workflow refuses it too (io.outputs); here the dialog says it before the run starts
            return False, self.tr("The model file '{}' must end in .rssgl, the extension 'Classify with RSSGL' "
                                  "reads; choose a name such as '{}.rssgl'.").format(
                model_out, os.path.splitext(os.path.basename(model_out))[0] or "model")
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,  # noqa: N802
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Read inputs, train through workflow.train_from_files, attach styles; return the output paths."""
        try:
            from ..core.training.classifier import TrainingParams
            from ..workflows.train import KERNEL_CHOICES, train_from_files
        except ImportError as error:  # torch missing or broken
            raise QgsProcessingException(
                self.tr("The RSSGL engine could not be loaded ({}). Install PyTorch for the Python that QGIS "
                        "uses (the RSSGL dock offers to do it).").format(error)) from error

        raster = self.raster_path(parameters, self.INPUT, context, self.tr("Hyperspectral raster"))
        vector = self.vector_file(parameters, self.SAMPLES, context, feedback)
        samples_raster = self.raster_path(parameters, self.SAMPLES_RASTER, context,
                                          self.tr("Training samples as a label raster"), required=False)
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or None
        model_out = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        classification_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_CLASSIFICATION, context) or None
        confidence_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context) or None
        report_out = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
        share = self.parameterAsDouble(parameters, self.VALIDATION_SHARE, context)
        patience = self.parameterAsInt(parameters, self.PATIENCE, context)
        params = TrainingParams(
            selection="validation" if share > 0 else "fit",
            fit_patience_epochs=patience,
            iterations=self.parameterAsInt(parameters, self.ITERATIONS, context),
            lr=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            stat_loss_weight=self.parameterAsDouble(parameters, self.STAT_LOSS_WEIGHT, context),
            validation_share=share,
            seed=self.parameterAsInt(parameters, self.SEED, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            training_input=TRAINING_INPUTS[self.parameterAsEnum(parameters, self.TRAINING_INPUT, context)],
            patience_epochs=patience,
        )
        kernel = KERNEL_CHOICES[self.parameterAsEnum(parameters, self.KERNEL, context)]
        cv_folds = self.parameterAsInt(parameters, self.CROSS_VALIDATION, context)
        rssgl_stage = RSSGL_STAGES[self.parameterAsEnum(parameters, self.RSSGL_STAGE, context)]
        band_selection = self.parameterAsString(parameters, self.BANDS, context) or None
        drop_water_vapour = self.parameterAsBoolean(parameters, self.DROP_WATER_VAPOUR, context)
        adapter = FeedbackAdapter(feedback)
        result = self.run_engine(lambda: train_from_files(
            raster,
            samples_vector=vector[0] if vector else None, samples_layer=vector[1] if vector else None,
            class_field=class_field if vector else None, samples_raster=samples_raster,
            params=params, kernel=kernel, model_out=model_out, report_out=report_out,
            classification_out=classification_out, confidence_out=confidence_out, cv_folds=cv_folds,
            rssgl_stage=rssgl_stage, band_selection=band_selection, drop_water_vapour=drop_water_vapour,
            progress=adapter.progress, should_stop=adapter.should_stop, log=adapter.log,
        ), feedback)
        if result.validation_oa is not None:
            feedback.pushInfo(self.tr("Validation overall accuracy of the kept model: {:.2f} %").format(
                100.0 * result.validation_oa))
        cv_oa = None
        if result.cross_validation is not None:
            summary = result.cross_validation.summary
            cv_oa = float(summary["oa"])  # 0-1, like Assess accuracy's OVERALL_ACCURACY
            feedback.pushInfo(self.tr("Cross-validated overall accuracy ({} folds of whole samples): {:.2f} % "
                                      "(+- {:.2f})").format(result.cross_validation.folds, 100.0 * cv_oa,
                                                            100.0 * summary["oa_ci95"]))
        attach_post_processor(self, context, classification_out, ClassificationPostProcessor(),
                              self.tr("RSSGL classification"))
        attach_post_processor(self, context, confidence_out, ConfidencePostProcessor(), self.tr("RSSGL confidence"))
        return {
            self.OUTPUT_MODEL: model_out,
            self.OUTPUT_CLASSIFICATION: classification_out,
            self.OUTPUT_CONFIDENCE: confidence_out,
            self.OUTPUT_REPORT: report_out,
            self.CROSS_VALIDATED_OA: cv_oa,
        }
