"""The networks every method is built from: the ViT encoder and predictor, and the JEPA model with the
hooks a method overrides."""
