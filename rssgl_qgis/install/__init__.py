"""Getting PyTorch into QGIS's Python: which build, how pip is run, why it failed, what to report.

Pure Python (no qgis, no torch): the GUI (gui/installer.py) and the resolution benchmark
(benchmarks/torch_resolution.py) share these rules, and tests run them without QGIS. User sentences
are English sources marked with ``QT_TRANSLATE_NOOP`` so pylupdate5 extracts them; the GUI translates
them with ``QCoreApplication.translate(context, source)``.
"""
