"""Help texts of the RSSGL algorithms, keyed by algorithm id and parameter name.

They live apart from the algorithm code (as QGIS keeps its help in a data file) so the algorithms
stay short and a test can check that every parameter of every algorithm is explained here. Each
text goes through ``QCoreApplication.translate`` with the context "RssglHelp" so `make transup`
extracts it for the translators.
"""

from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication

translate = QCoreApplication.translate

HELP_URL = "https://github.com/rssgl-qgis/rssgl-qgis#processing-algorithms"


def descriptions() -> dict[str, str]:
    """One paragraph per algorithm id saying what it does and when to use it (localised)."""
    return {
        "train": translate("RssglHelp", "Trains an RSSGL network "
            "(a 3D ConvLSTM with attention and a statistical loss, Wang et al. 2022) "
            "on a hyperspectral raster from a few labelled pixels. The whole scene is given to the network at "
            "once, so it learns spatial context as well as spectra; a raster too large for the device's memory "
            "is trained on windows around the samples instead. Training samples are either a vector layer "
            "(polygons or points) with a class field, or a label raster on the same grid. Every sample pixel "
            "trains the final model; a cross-validation over whole samples estimates the map's accuracy and "
            "chooses how RSSGL is combined with a per-pixel spectral model. The model file (.rssgl) keeps the "
            "class names and colours and the band statistics, and can classify other rasters with "
            "'Classify with RSSGL'. Bands that the file's bad-band list flags bad, or that hold no data, are "
            "left out and named in the log; the band selection and the water-vapour option leave out more. A GPU "
            "makes training much faster; on a CPU it works but is slow."),
        "classify": translate("RssglHelp", "Classifies a hyperspectral raster "
            "with a model trained by 'Train RSSGL'. The raster must have the "
            "bands the model was trained on (by wavelength when both know them, else by band number); a model "
            "trained on a band subset classifies the full-band raster. The "
            "raster is processed in overlapping tiles with bounded memory, so large scenes work too. The "
            "result is a GeoTIFF of class values (0 = no data) with the class names and colours inside and a "
            ".qml style beside it; it loads as a paletted layer."),
        "accuracy": translate("RssglHelp", "Compares a classification raster "
            "with reference samples (a vector layer with a class field, or a "
            "label raster) and writes an HTML and a CSV report: overall accuracy, average accuracy and kappa "
            "with 95 % confidence intervals, producer's and user's accuracy and F1 per class, the confusion "
            "matrix, the mapped area of each class in map units and the area-adjusted accuracy and areas of "
            "Olofsson et al. (2014). Classes are matched by value; a text reference field is matched to the "
            "class names of the classification. Use reference samples that were NOT used for training."),
    }


def parameter_help() -> dict[str, dict[str, str]]:
    """Per algorithm id: parameter name -> explanation (localised). Every parameter must appear."""
    return {
        "train": {
            "INPUT": translate("RssglHelp", "The hyperspectral raster to learn from (any GDAL raster; nodata and NaN "
                                            "pixels are ignored)."),
            "SAMPLES": translate("RssglHelp", "Training samples as polygons or points. Polygons are burnt into the "
                                              "raster grid with the pixel-centre rule; samples in another CRS are "
                                              "reprojected; samples outside the raster are dropped with a warning. "
                                              "Use either this or the label raster. Only selected features are used "
                                              "when 'Selected features only' is ticked."),
            "CLASS_FIELD": translate("RssglHelp", "Field of the training samples that holds the class: whole numbers "
                                                  "(class values, 0 is ignored) or text (each distinct text becomes a "
                                                  "class, numbered 1..N in alphabetical order; the text becomes the "
                                                  "class name)."),
            "SAMPLES_RASTER": translate("RssglHelp", "Training samples as a label raster on the same grid as the input "
                                                     "raster: 0 or nodata = unlabelled, other values = classes. Use "
                                                     "either this or the vector samples."),
            "VALIDATION_SHARE": translate("RssglHelp", "0 (the default): train on every sample pixel and stop when "
                                                       "the network fits them no better (nothing held out; the "
                                                       "cross-validation estimates the accuracy). Above 0 (up to 0.5): "
                                                       "that share of each class's pixels is held out for choosing the "
                                                       "best epoch, which costs accuracy with few samples."),
            "ITERATIONS": translate("RssglHelp", "Number of training iterations (one iteration = one pass of the whole "
                                                 "scene with up to 10 pixels per class). The paper uses 600-1000."),
            "LEARNING_RATE": translate("RssglHelp", "Initial learning rate of the SGD optimiser; it decays with a "
                                                    "polynomial schedule. 0.005 is the paper's value."),
            "KERNEL": translate("RssglHelp", "Size of the ConvLSTM's 3D kernel (spectral depth x rows x columns). "
                                             "Auto picks 3x3x3 for small scenes and 3x5x5 otherwise, as the paper "
                                             "does."),
            "STAT_LOSS_WEIGHT": translate("RssglHelp", "Weight of the statistical loss that pulls pixels of a class "
                                                       "together and pushes classes apart (0.001 in the paper; 0 "
                                                       "turns it off)."),
            "SEED": translate("RssglHelp", "Random seed: the same seed, data and device give the same model."),
            "DEVICE": translate("RssglHelp", "Where to train: Auto uses an NVIDIA GPU when torch sees one and the "
                                             "CPU otherwise; CUDA fails clearly when there is no GPU."),
            "TRAINING_INPUT": translate("RssglHelp", "What the network sees at each iteration. Auto: the whole raster "
                                                     "when the device's memory holds it (as the paper trains), else "
                                                     "windows of 128 x 128 pixels around the samples, a few per "
                                                     "iteration, so a flight line or a whole satellite scene trains "
                                                     "on an 8 GB GPU. The report says which input was used."),
            "PATIENCE": translate("RssglHelp", "Early stopping: stop after this many epochs (of 10 iterations) "
                                               "in which the training pixels (or, with a validation share, the "
                                               "validation pixels) were classified no better."),
            "CROSS_VALIDATION": translate("RssglHelp", "Honest accuracy estimate and model choice (3 by default; 0 = "
                                                       "none): with N folds (2-10), the samples (whole polygons; "
                                                       "patches of a label raster) are dealt into N groups, N extra "
                                                       "models are each trained without one group and tested on it. "
                                                       "The same folds decide how the map combines RSSGL with a "
                                                       "per-pixel spectral model (an SVM-like kernel classifier); every "
                                                       "candidate's accuracy goes to the log and the report. Training "
                                                       "takes N + 1 times as long. The saved model is trained on all "
                                                       "samples. Classes with fewer than 2 separate samples are not "
                                                       "tested. Without folds, RSSGL and the spectral model are pooled "
                                                       "with equal weights. The folds run only where RSSGL is trained "
                                                       "(see the RSSGL stage: by default not on a CPU)."),
            "RSSGL_STAGE": translate("RssglHelp", "Whether RSSGL is trained. 'Automatic: on a GPU only' (the default) "
                                                  "trains RSSGL where a CUDA GPU is found (seconds to minutes) and "
                                                  "elsewhere gives the stage-one map: the per-pixel spectral model's "
                                                  "map in seconds, without cross-validation. 'Always' trains RSSGL on "
                                                  "a CPU too: minutes. 'Never: spectral model only' fits the per-pixel "
                                                  "spectral model alone (stage one) on every device: the map in "
                                                  "seconds, no cross-validation, and a model file without an RSSGL "
                                                  "network, which 'Classify with RSSGL' classifies pixel by pixel but "
                                                  "which cannot be fine-tuned (a stage-one model from 'Automatic' on "
                                                  "a CPU is the same). The log and the report say which stage made "
                                                  "the map."),
            "BANDS": translate("RssglHelp", "Optional: the bands to train on. Band numbers and ranges (1-based, as QGIS "
                                            "counts bands) keep those bands: '1-129, 136-224'; a leading 'drop' "
                                            "leaves them out instead: 'drop 130-135'. Ranges ending in 'nm' select "
                                            "band centre wavelengths: '400-1340 nm, 1460-1790 nm' (the raster must "
                                            "record its wavelengths). Empty: every band. Bands that the file's "
                                            "bad-band list (bbl) flags bad, or that hold no data or one constant "
                                            "value, are always left out and named in the log. The model file "
                                            "records the bands it uses, so 'Classify with RSSGL' picks them from a "
                                            "raster with all the bands."),
            "DROP_WATER_VAPOUR": translate("RssglHelp", "Leave out the bands in the water-vapour absorption windows "
                                                        "(band centres 1340-1460 nm, 1790-1960 nm and beyond 2450 "
                                                        "nm), which are noisy or empty in EnMAP, PRISMA, EMIT and "
                                                        "airborne products. Needs the raster's band wavelengths; "
                                                        "combines with the band selection."),
            "OUTPUT_MODEL": translate("RssglHelp", "The trained model file (.rssgl: safetensors weights and JSON "
                                                   "metadata, never pickled code)."),
            "OUTPUT_CLASSIFICATION": translate("RssglHelp", "Optional: classify the training raster right away and "
                                                            "write the class map here (GeoTIFF, styled)."),
            "OUTPUT_CONFIDENCE": translate("RssglHelp", "Optional: the model's confidence per pixel (highest class "
                                                        "probability, 0-1, float32)."),
            "CROSS_VALIDATED_OA": translate("RssglHelp", "Output number: the cross-validated overall accuracy "
                                                         "(0-1; empty without cross-validation)."),
            "OUTPUT_REPORT": translate("RssglHelp", "Optional HTML training report: loss and validation accuracy per "
                                                    "epoch, classes, parameters, device and timing."),
        },
        "classify": {
            "INPUT": translate("RssglHelp", "The hyperspectral raster to classify. It must have the bands the model "
                                            "was trained on; a model trained on some of the bands picks them from "
                                            "a raster with more bands (by wavelength when both record them, "
                                            "within 2 nm, else by band number)."),
            "MODEL": translate("RssglHelp", "A model file (.rssgl) written by 'Train RSSGL', with RSSGL or with the "
                                            "spectral model only (RSSGL stage 'Never'; then each pixel is classified "
                                            "on its own, without tiles' overlaps)."),
            "MASK": translate("RssglHelp", "Optional: only classify inside this mask. A polygon layer (pixels whose "
                                           "centre is inside a polygon) or a raster on the same grid (non-zero "
                                           "pixels). Pixels outside are written as 0 (no data)."),
            "SCENE_STATISTICS": translate("RssglHelp", "RSSGL normalises with statistics of the whole scene. A raster "
                                                       "larger than one tile is classified tile by tile; with this "
                                                       "option the statistics are first gathered over the tiles (3 "
                                                       "extra passes; on large rasters each pass looks at a quarter "
                                                       "of the tiles), so the map has no tile seams. On the CPU, a "
                                                       "raster whose layer maps fit the memory setting (up to about "
                                                       "1500 x 1500 pixels with 2 GiB) is instead computed layer by "
                                                       "layer over the whole raster: exactly the whole-scene map, "
                                                       "without extra passes. Untick it for a quicker preview (each "
                                                       "tile normalised on its own)."),
            "OUTPUT": translate("RssglHelp", "The classification: GeoTIFF of class values (0 = no data), smallest "
                                             "unsigned integer type, with colour table, class names and a .qml "
                                             "style."),
            "OUTPUT_CONFIDENCE": translate("RssglHelp", "Optional: the highest class probability per pixel (0-1, "
                                                        "float32); low values show where more samples would help."),
            "OUTPUT_PROBABILITIES": translate("RssglHelp", "Optional: one float32 band per class with its probability "
                                                           "(band names are the class names)."),
        },
        "accuracy": {
            "INPUT": translate("RssglHelp", "The classification raster to assess (class values, 0 = no data), e.g. "
                                            "the output of 'Classify with RSSGL'."),
            "REFERENCE": translate("RssglHelp", "Reference samples as polygons or points (reprojected and burnt into "
                                                "the classification's grid). Use either this or the reference "
                                                "raster."),
            "REFERENCE_FIELD": translate("RssglHelp", "Field of the reference samples holding the class: the class "
                                                      "value, or the class name (matched to the classification's "
                                                      "class names)."),
            "REFERENCE_RASTER": translate("RssglHelp", "Reference as a label raster on the classification's grid: 0 or "
                                                       "nodata = not assessed."),
            "OUTPUT_HTML": translate("RssglHelp", "The HTML report (tables of all measures and the confusion "
                                                  "matrix)."),
            "OUTPUT_CSV": translate("RssglHelp", "The same measures as CSV, one value per row (metric, class_value, "
                                                 "class_name, mapped_value, value, ci95)."),
            "OVERALL_ACCURACY": translate("RssglHelp", "Output number: the overall accuracy (0-1)."),
            "KAPPA": translate("RssglHelp", "Output number: Cohen's kappa."),
        },
    }
