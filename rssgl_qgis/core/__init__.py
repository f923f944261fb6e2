"""RSSGL engine: pure torch/numpy/scipy (no qgis, no osgeo, no PyQt).

Import the submodules you need (``rssgl_qgis.core.training`` etc.); importing the package itself
loads nothing heavy.
"""

__version__ = "0.1.0"
