"""The networks methods are built from (the ViT encoder and predictor, regions of the patch grid) and the
mathematics they share as pure functions on tensors (functional.py). The methods are in pipeline/methods."""
