"""Benchmarks of rssgl-qgis: training speed against the authors' structure, inference throughput."""
