"""JEPA and SparseJEPA pretraining, feature extraction, linear probing and reporting."""
