"""The flows shared by the Processing algorithms and the dock: train from files (train), assess a map
(assess), their reports (reports) and log helpers (support); also the reproduction CLI (reproduce).

Between the QGIS front ends (gui, processing) and the engine (io, core): may import io and core, never
gui or processing, and never qgis at import time. Importing the package loads nothing.
"""
