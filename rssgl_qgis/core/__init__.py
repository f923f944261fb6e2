"""RSSGL engine: pure torch/numpy/scipy (no qgis, no osgeo, no PyQt).

The subpackages, lowest first (each may import only those before it; tests/engine/test_architecture.py
holds the order):

- the modules here: errors, text, palette, file_mode, metrics, modelfile (the model file's container);
- ``network``: the RSSGL module, its losses, fast kernels, the device choice;
- ``data``: datasets, synthetic scenes, normalisation, band selection, sampling;
- ``spectral``: the per-pixel spectral model and the pool that combines it with RSSGL;
- ``prediction``: tiling, tiled and layer-wise whole-scene prediction, statistics passes, memory planning;
- ``training``: the classifier (fit / predict / save / load), its parameters, whole-scene and window training,
  the cross-validated choice of the pool.

Import the submodules you need (``rssgl_qgis.core.training.classifier`` etc.); importing the package itself
loads nothing heavy.
"""

__version__ = "0.1.0"
