"""DVC stage `pretrain-<method>`: a prepared dataset -> the method's frozen encoders and reports, per seed.

Usage: python -m stages.pretrain <method> <dataset> [--under <name>]   (methods: pipeline/methods/registry.yaml)
Writes data/models/<method>/seed<k>/{target,context}.pt and reports/pretrain/<method>/seed<k>/ (summary,
history, outputs) for every k in params.yaml `seeds` (with --under <name>: under data/<name>, reports/<name>). A killed run resumes from
checkpoints/<method>/<fingerprint>/last.pt when re-run; a seed whose run already finished (same params,
data and code) only reloads its last checkpoint, so adding a seed costs one run.
With pretrain.processes > 1 it re-launches itself under torchrun; process 0 writes every output.
"""
from pipeline import artifacts, methods
from pipeline.artifacts.prepared import load_prepared
from pipeline.core.errors import PipelineError
from pipeline.pretrain.distributed import relaunch_under_torchrun
from pipeline.pretrain.run import pretrain_method
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    args, roots = artifacts.split_under(argv)
    if len(args) != 2:
        raise PipelineError("usage: python -m stages.pretrain <method> <dataset> [--under <name>] (methods: "
                            "pipeline/methods/registry.yaml)")
    method, dataset = methods.get(args[0]), args[1]
    params = method.load_params()
    if method.pretrained:
        relaunch_under_torchrun(params.pretrain.processes, __spec__.name, argv)  # > 1: runs under torchrun, exits
    data = load_prepared(artifacts.prepared_dir(dataset))
    for seed in params.seeds:
        pretrain_method(method, dataset, data, params.for_seed(seed), roots)


if __name__ == "__main__":
    run_stage(main)
