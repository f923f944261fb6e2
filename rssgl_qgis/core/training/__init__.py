"""Training: the classifier (fit / predict / save / load), its parameters, the whole-scene epoch loop,
training on windows of a large raster, the model file's content checks, and the cross-validation over
whole samples that chooses how much RSSGL the map gets."""
