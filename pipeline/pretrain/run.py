"""What the pretrain stage does for one registered method: train it (or, for an untrained reference,
build it), log it to MLflow, and write its encoder and reports through pipeline.artifacts."""
from __future__ import annotations

import torch

from pipeline import artifacts
from pipeline.artifacts.encoder import write_encoder
from pipeline.artifacts.prepared import PreparedDataset, dataset_input
from pipeline.artifacts.records import PretrainSummary, write_history, write_outputs, write_summary
from pipeline.config.params import Params
from pipeline.core.hardware import resolve_device
from pipeline.methods import Method
from pipeline.pretrain import checkpoint
from pipeline.pretrain.distributed import init_from_env
from pipeline.pretrain.signals import encoder_signals
from pipeline.pretrain.trainer import Trainer
from pipeline.runtime import tracking


def pretrain_method(method: Method, dataset: str, data: PreparedDataset, params: Params,
                    roots: artifacts.Roots = artifacts.Roots()) -> None:
    """One seed's run (params.seed): its encoders under <data>/models/<method>/seed<k>/, its reports under
    <reports>/pretrain/. Checkpoints are shared by every pipeline: a finished run is only reloaded."""
    if not method.pretrained:
        write_reference(method, data, params, roots)
        return
    world = init_from_env(resolve_device(params.pretrain.device).type)
    run_dir = checkpoint.run_dir(method.key, checkpoint.run_identity(method, params, data.meta))
    trainer = Trainer(method.key, method.build, params, torch.from_numpy(data.train_images),
                      torch.from_numpy(data.train_labels), data.num_classes, run_dir)
    if not world.is_main:
        trainer.run()  # its share of every step; process 0 logs and writes
        return
    logged = {"seed": params.seed, "data.pretrain": dataset, **{k: v for k, v in params.flat().items() if k != "seed"}}
    used = {"pretrain_images": len(data.train_labels)}
    inputs = [tracking.DatasetInput(**dataset_input(dataset, data.meta, "pretrain", used))]
    with tracking.Run("pretrain", method.key, dataset, params.seed, logged,
                      run_id=trainer.extra.get("mlflow_run_id"), inputs=inputs) as run:
        trainer.extra["mlflow_run_id"] = run.run_id
        print(f"pretrain {method.key} on {dataset}: {trainer.schedules.total_steps} steps of "
              f"{params.pretrain.batch_size} on {trainer.device}; checkpoints in {run_dir}", flush=True)
        result = trainer.run(on_log=lambda row: run.log_metrics(row, step=row["step"]))
        run.log_metrics({k if k.startswith("final_") else f"final_{k}": v for k, v in result.summary.to_json().items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)})

    seed = params.seed
    write_summary(artifacts.summary_path(method.key, seed, roots.reports), result.summary)
    write_history(artifacts.history_path(method.key, seed, roots.reports), result.history)
    write_outputs(artifacts.outputs_path(method.key, seed, roots.reports), result.outputs)
    for name, encoder in (("target", result.target_encoder), ("context", result.context_encoder)):
        write_encoder(artifacts.encoder_path(method.key, seed, name, roots.data), encoder, method.key,
                      {"params": logged, "steps": result.summary.steps, "encoder": name})
    print(f"wrote {artifacts.encoder_path(method.key, seed, data=roots.data).parent}", flush=True)


def write_reference(method: Method, data: PreparedDataset, params: Params,
                    roots: artifacts.Roots = artifacts.Roots()) -> None:
    """An untrained reference encoder, with the same collapse signals a pretrained method logs at its end."""
    encoder = method.build(params, data.image_size)
    signals = encoder_signals(encoder, torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels),
                              data.num_classes)
    seed = params.seed
    write_summary(artifacts.summary_path(method.key, seed, roots.reports),
                  PretrainSummary(method=method.key, seed=seed, steps=0, **signals))
    write_history(artifacts.history_path(method.key, seed, roots.reports), [{"step": 0, **signals}])
    write_outputs(artifacts.outputs_path(method.key, seed, roots.reports), {})
    path = artifacts.encoder_path(method.key, seed, data=roots.data)
    write_encoder(path, encoder, method.key, {"params": params.flat(), "encoder": "target"})
    print(f"wrote {path}", flush=True)
