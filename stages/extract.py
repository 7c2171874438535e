"""DVC stage `extract@<method>-<dataset>`: frozen target-encoder features, computed once.

Usage: python -m stages.extract <method> <dataset>
Writes data/features/<method>/<dataset>.npz (train and test features with their labels).
"""
import torch

from pipeline import artifacts
from pipeline.artifacts.encoder import read_encoder
from pipeline.artifacts.features import dataset_summary, write_features
from pipeline.artifacts.prepared import load_prepared
from pipeline.core.errors import PipelineError
from pipeline.core.params import load_params
from pipeline.eval.features import pooled_features
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise PipelineError("usage: python -m stages.extract <method> <dataset>")
    method, dataset = argv
    cfg = load_params(["extract"]).extract
    encoder, encoder_params = read_encoder(artifacts.encoder_path(method))
    # Memory-mapped: a large prepared set (Places205, iNat18) is read one batch at a time.
    data = load_prepared(artifacts.prepared_dir(dataset), mmap=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    feats = {split: pooled_features(encoder, getattr(data, f"{split}_images"), cfg.batch_size, cfg.layers, cfg.pooling,
                                    device, label=f"extract {method}/{dataset} {split}")
             for split in ("train", "test")}
    out = artifacts.features_path(method, dataset)
    write_features(out, feats["train"], data.train_labels, feats["test"], data.test_labels, data.num_classes,
                   encoder_params, dataset_summary(data.meta))
    print(f"wrote {out}: {tuple(feats['train'].shape)} train, {tuple(feats['test'].shape)} test", flush=True)


if __name__ == "__main__":
    run_stage(main)
