"""Whole-scene prediction within a memory budget: tiling, the tile predictor, the batch pipeline, the
statistics passes and caches that make tiles agree with a whole-scene forward, layer-wise CPU prediction,
and the memory model that plans tiles and batches (and says whether whole-scene training fits)."""
