"""DVC stage `extract@<model>-<dataset>`: frozen target-encoder features, computed once.

Usage: python stages/extract.py <model> <dataset>
Writes data/features/<model>/<dataset>.npz (train and test features with their labels).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, also in `dvc exp --temp`

import torch  # noqa: E402

from pipeline.arrays import load_prepared  # noqa: E402
from pipeline.cli import run_stage  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.features import dataset_summary, load_encoder, pooled_features, save_features  # noqa: E402


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise PipelineError("usage: python stages/extract.py <model> <dataset>")
    model, dataset = argv
    cfg = load_params(["extract"]).extract
    encoder, encoder_params = load_encoder(Path("data/models") / model / "encoder.pt")
    # Memory-mapped: a large prepared set (Places205, iNat18) is read one batch at a time.
    data = load_prepared(Path("data/prepared") / dataset, mmap=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    feats = {split: pooled_features(encoder, getattr(data, f"{split}_images"), cfg.batch_size, cfg.layers, device,
                                    label=f"extract {model}/{dataset} {split}")
             for split in ("train", "test")}
    out = Path("data/features") / model / f"{dataset}.npz"
    save_features(out, feats["train"], data.train_labels, feats["test"], data.test_labels, data.num_classes,
                  encoder_params, dataset_summary(data.meta))
    print(f"wrote {out}: {tuple(feats['train'].shape)} train, {tuple(feats['test'].shape)} test", flush=True)


if __name__ == "__main__":
    run_stage(main)
