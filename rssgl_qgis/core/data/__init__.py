"""Scenes and samples before any model: the benchmark datasets (.mat), the synthetic scene, band
statistics and normalisation, band selection, and the sampling of training pixels and folds."""
