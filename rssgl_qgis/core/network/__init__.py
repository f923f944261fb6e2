"""The RSSGL network: the module (model), its statistical loss (losses), the fused training step and
kernels (accel), and the device it runs on (device). Depends only on the modules in ``core`` itself."""
