"""params.yaml's `launcher` block: whether the pretrain stage runs on this machine or as SLURM jobs.

It is read here, in pipeline/runtime, and not by pipeline/config on purpose: runtime is output-neutral
(pipeline/core/codebase.py), so no stage declares the block, it is never a DVC param or dep and never
enters a checkpoint fingerprint. Moving a run between a laptop and a cluster, or changing its partition
or time limit, re-runs nothing and resumes the same checkpoints.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.yamlfile import read_mapping

KINDS = ("local", "slurm")
# The stages that may run as jobs: pretraining is the one that shares a DistributedDataParallel world
# across processes (any other stage would do its whole work once per task) and the one long enough to need it.
CLUSTER_STAGES = ("stages.pretrain",)
# Set inside a job, so the stage the job runs does its work instead of submitting itself again.
IN_JOB = "SPARSEJEPA_IN_JOB"


@dataclass(frozen=True)
class Launcher:
    kind: str            # local: this process (torchrun when pretrain.processes > 1); slurm: submitit jobs
    nodes: int
    gpus_per_node: int   # 0: CPU nodes
    tasks_per_node: int  # processes per node: one per GPU
    cpus_per_task: int
    timeout_min: int
    partition: str       # "": the cluster's default
    account: str         # "": the user's default
    max_requeues: int    # times a timed-out job is requeued (pre-emptions are always requeued)
    folder: str          # submitit's pickles and per-task logs (a cluster path may use %j, the job id)

    @property
    def tasks(self) -> int:
        return self.nodes * self.tasks_per_node

    def validate(self) -> None:
        _require(self.kind in KINDS, "kind", self.kind, "'local' or 'slurm'")
        _require(self.nodes >= 1, "nodes", self.nodes, ">= 1")
        _require(self.gpus_per_node >= 0, "gpus_per_node", self.gpus_per_node, ">= 0 (0: CPU nodes)")
        _require(self.tasks_per_node >= 1, "tasks_per_node", self.tasks_per_node, ">= 1")
        _require(self.gpus_per_node == 0 or self.tasks_per_node == self.gpus_per_node, "tasks_per_node",
                 self.tasks_per_node, f"launcher.gpus_per_node={self.gpus_per_node} (one process per GPU)")
        _require(self.cpus_per_task >= 1, "cpus_per_task", self.cpus_per_task, ">= 1")
        _require(self.timeout_min >= 1, "timeout_min", self.timeout_min, ">= 1 (minutes)")
        _require(self.max_requeues >= 0, "max_requeues", self.max_requeues, ">= 0")
        _require(bool(self.folder.strip()), "folder", self.folder, "a folder the cluster's nodes can write")


def _require(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise PipelineError(f"params.yaml: launcher.{key} = {value!r} is invalid; it must be {expected}")


def launcher_from_dict(block) -> Launcher:
    if not isinstance(block, dict):
        raise PipelineError("params.yaml: 'launcher' must be a mapping of keys to values (see the committed "
                            "params.yaml)")
    fields = {f.name: f.type for f in dataclasses.fields(Launcher)}
    for key in block:
        if key not in fields:
            raise PipelineError(f"params.yaml: unknown key 'launcher.{key}'; known keys: {', '.join(sorted(fields))}")
    for key, kind in fields.items():
        if key not in block:
            raise PipelineError(f"params.yaml has no 'launcher.{key}'; add it to the 'launcher' block "
                                f"(see the committed params.yaml): code holds no defaults")
        value = block[key]
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise PipelineError(f"params.yaml: launcher.{key} must be an integer, got {value!r}")
        if kind == "str" and not isinstance(value, str):
            raise PipelineError(f"params.yaml: launcher.{key} must be a string, got {value!r} (\"\" for none)")
    launcher = Launcher(**block)
    launcher.validate()
    return launcher


def load_launcher(path: str | Path = "params.yaml") -> Launcher:
    raw = read_mapping(path)
    if "launcher" not in raw:
        raise PipelineError(f"{path} has no 'launcher' block; add it (see the committed params.yaml)")
    return launcher_from_dict(raw["launcher"])

