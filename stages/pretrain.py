"""DVC stages `init_random` and `pretrain@<model>`: a prepared dataset -> a frozen target encoder.

Usage: python stages/pretrain.py {random,jepa,sparse_jepa} <dataset>
Writes data/models/<model>/encoder.pt and, for trained models, reports/pretrain/<model>/.
A killed run resumes from checkpoints/<model>/<fingerprint>/last.pt when re-run.
With pretrain.processes > 1 it re-launches itself under torchrun; process 0 writes every output.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, also in `dvc exp --temp`

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from pipeline import checkpoint, tracking  # noqa: E402
from pipeline.arrays import load_prepared  # noqa: E402
from pipeline.atomic import atomic_path, write_json  # noqa: E402
from pipeline.cli import run_stage  # noqa: E402
from pipeline.config import as_dict, load_params  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.column_norms import write_column_norms  # noqa: E402
from pipeline.distributed import init_from_env, relaunch_under_torchrun  # noqa: E402
from pipeline.train import KINDS, Trainer, resolve_device, run_identity  # noqa: E402
from pipeline.vit import random_encoder  # noqa: E402

TRAINED_PARAMS = ["seed", "model", "predictor", "masks", "pretrain"]


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in KINDS:
        raise PipelineError(f"usage: python stages/pretrain.py {{{','.join(KINDS)}}} <dataset>")
    kind, dataset = argv
    out = Path("data/models") / kind / "encoder.pt"
    if kind == "random":
        data = load_prepared(Path("data/prepared") / dataset)
        params = load_params(["seed", "model"])
        encoder = random_encoder(params.model, data.image_size, params.seed)
        save_encoder(out, checkpoint.encoder_file(encoder, kind, {"params": {"seed": params.seed, **flat(params, ["model"])}}))
        return

    sections = TRAINED_PARAMS + (["sparsity"] if kind == "sparse_jepa" else [])
    params = load_params(sections)
    relaunch_under_torchrun(params.pretrain.processes, __file__, argv)  # processes > 1: runs under torchrun, exits
    world = init_from_env(resolve_device(params.pretrain.device).type)
    data = load_prepared(Path("data/prepared") / dataset)
    identity = run_identity(kind, params, data.meta)
    run_dir = checkpoint.run_dir(kind, identity)
    trainer = Trainer(kind, params, torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels),
                      data.num_classes, data.meta, run_dir)
    if not world.is_main:
        trainer.run()  # its share of every step; process 0 logs and writes
        return
    logged = {"seed": params.seed, "data.pretrain": dataset, **flat(params, sections[1:])}
    with tracking.Run("pretrain", kind, dataset, params.seed, logged,
                      run_id=trainer.extra.get("mlflow_run_id")) as run:
        trainer.extra["mlflow_run_id"] = run.run_id
        print(f"pretrain {kind} on {dataset}: {trainer.schedules.total_steps} steps of {params.pretrain.batch_size} "
              f"on {trainer.device}; checkpoints in {run_dir}", flush=True)
        result = trainer.run(on_log=lambda row: run.log_metrics(row, step=row["step"]))
        run.log_metrics({f"final_{k}": v for k, v in result.summary.items() if isinstance(v, (int, float))})

    reports = Path("reports/pretrain") / kind
    write_json(reports / "summary.json", result.summary)
    with atomic_path(reports / "history.csv") as tmp:
        pd.DataFrame(result.history).to_csv(tmp, index=False)
    if result.column_norms is not None:
        write_column_norms(reports / "column_norms.csv", result.column_norms)
    save_encoder(out, checkpoint.encoder_file(result.target_encoder, kind, {"params": logged, "steps": result.summary["steps"]}))


def flat(params, sections: list[str]) -> dict:
    return {k: v for name in sections for k, v in tracking.flatten(name, as_dict(params.section(name))).items()}


def save_encoder(path: Path, content: dict) -> None:
    checkpoint.save(path, content)
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    run_stage(main)
