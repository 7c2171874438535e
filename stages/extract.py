"""DVC stage `extract-<method>` (and `extract-pixels`): frozen features of every probed dataset, computed once.

Usage: python -m stages.extract <method>     every seed of the method, each encoder of extract.encoders
       python -m stages.extract pixels       the pixel controls (pipeline/eval/controls.py): raw pixels, and
                                             their PCA and random projections at the encoders' feature width
Writes data/features/<method>/seed<k>/<encoder>/<dataset>.npz, or data/features/pixels/[seed<k>/]<control>/
<dataset>.npz (with a trailing --under <name>: under data/<name>/).
One process for all of them: each stage start costs seconds of imports, each extraction less.
"""

from pipeline import artifacts
from pipeline.artifacts.features import dataset_summary, write_features
from pipeline.artifacts.prepared import load_prepared
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import resolve_device
from pipeline.config.params import load_params
from pipeline.eval.controls import gaussian_basis, pca_basis, project
from pipeline.eval.features import feature_width, is_grey, load_encoder, pixel_features, pooled_features
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    argv, roots = artifacts.split_under(argv)
    if len(argv) != 1:
        raise PipelineError(f"usage: python -m stages.extract <method>|{artifacts.PIXELS} [--under <name>]")
    if argv[0] == artifacts.PIXELS:
        extract_controls(load_params(["seeds", "data", "model", "extract"]), roots)
        return
    method = argv[0]
    params = load_params(["seeds", "data", "extract"])
    device = resolve_device()
    for dataset in params.data.probe:
        # Memory-mapped: a large prepared set (Places205, iNat18) is read one batch at a time.
        data = load_prepared(artifacts.prepared_dir(dataset), mmap=True)
        for seed in params.seeds:
            for name in artifacts.saved_encoders(method, seed, params.extract.encoders, roots.data):
                encoder, encoder_params = load_encoder(artifacts.encoder_path(method, seed, name, roots.data))
                label = f"extract {method}/seed{seed}/{name}/{dataset}"
                feats = {split: pooled_features(encoder, getattr(data, f"{split}_images"), params.extract.batch_size,
                                                params.extract.layers, params.extract.pooling, device,
                                                label=f"{label} {split}")
                         for split in ("train", "test")}
                out = artifacts.features_path(method, dataset, seed, name, roots.data)
                write_features(out, feats["train"], data.train_labels, feats["test"], data.test_labels,
                               data.num_classes, encoder_params, dataset_summary(data.meta))
                print(f"wrote {out}: {tuple(feats['train'].shape)} train, {tuple(feats['test'].shape)} test",
                      flush=True)


def extract_controls(params, roots: artifacts.Roots) -> None:
    """The pixel controls of every probed dataset, the projections at the width of the encoders' features."""
    width = feature_width(params.model, params.data.image_size, params.extract.layers, params.extract.pooling)
    for dataset in params.data.probe:
        data = load_prepared(artifacts.prepared_dir(dataset), mmap=True)
        grey = is_grey(data.train_images) and is_grey(data.test_images)
        train, test = pixel_features(data.train_images, grey), pixel_features(data.test_images, grey)

        def write(control: str, seed: int | None, tr, te, made: dict) -> None:
            out = artifacts.features_path(artifacts.PIXELS, dataset, seed, control, roots.data)
            write_features(out, tr, data.train_labels, te, data.test_labels, data.num_classes, made,
                           dataset_summary(data.meta))
            print(f"wrote {out}: {tuple(tr.shape)} train, {tuple(te.shape)} test", flush=True)

        write("raw", None, train, test, {"features": "raw pixels"})
        mean, basis = pca_basis(train, width)
        write("pca", None, project(train, basis, mean), project(test, basis, mean),
              {"features": f"PCA of the pixels to {basis.shape[1]} dimensions (train split's directions)"})
        for seed in params.seeds:
            basis = gaussian_basis(train.shape[1], width, seed)
            write("gaussian", seed, project(train, basis), project(test, basis),
                  {"features": f"random Gaussian projection of the pixels to {width} dimensions", "seed": seed})


if __name__ == "__main__":
    run_stage(main)
