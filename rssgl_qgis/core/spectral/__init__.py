"""The per-pixel spectral model (spectral_model) and the log-linear pool that combines it with RSSGL
(pool). The cross-validated choice of the pool trains classifiers and lives in core.training."""
