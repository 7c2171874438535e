"""The paper's model through the real stages for a few epochs: the end-to-end part of the GPU check
(.ci/gpu-check; not a DVC stage).

    python -m pipeline.bench.gpu_stages --out DIR [--epochs 3] [--methods jepa,sparse_jepa] [key=value ...]

In a scratch copy of the stage code and params.yaml (the checkout is never written), with the paper setting's
model and predictor (pipeline/settings/paper.yaml) pretraining on FashionMNIST at 32 px, it runs
`stages.prepare`, then for every method of the default pipeline (or --methods) `stages.pretrain`,
`stages.extract` and `stages.probe`, each in its own process as DVC would run it. The raw files come from
SPARSEJEPA_DATA_MIRROR or the checkout's data/raw (read as a mirror); MLflow is off. key=value pairs override
params.yaml in the copy after the setting's values (a CPU test shrinks the model and the data with them).

It writes DIR/stages-<machine>.json (and its .md table): per stage its wall time and peak memory (on CUDA the
most GPU memory nvidia-smi saw in use while the stage ran, its CUDA context included; otherwise the process's
peak RSS), per pretrained method its images/s, and per method and encoder the linear probe's test top-1 on
FashionMNIST.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from pipeline import methods
from pipeline.bench import key_values, write_report
from pipeline.config.params import read_params_file, with_overrides
from pipeline.core.errors import PipelineError
from pipeline.data.download import MIRROR_ENV
from pipeline.report.tables import DASH, markdown_table
from pipeline.runtime.cli import run_stage
from pipeline.settings import overrides as setting_overrides

REPO = Path(__file__).resolve().parents[2]
DATASET = "fashion_mnist"
# The paper setting's encoder and predictor, its batch and learning rate; not its schedule (--epochs) or data.
PAPER_KEYS = ("model.", "predictor.", "pretrain.batch_size", "pretrain.lr", "pretrain.ema")


def setting(epochs: float, extra: dict) -> dict:
    paper = {k: v for k, v in setting_overrides("paper").items() if k.startswith(PAPER_KEYS)}
    return {**paper, "data.pretrain": DATASET, "data.probe": [DATASET], "data.image_size": 32,
            f"subsets.{DATASET}": {"train": 0, "test": 0}, "seeds": [0], "pretrain.epochs": epochs,
            "pretrain.warmup_epochs": min(1.0, epochs / 10), "pretrain.monitor_every": 0,
            "pretrain.keep_every_epochs": 0, **extra}


def scratch_copy(values: dict) -> Path:
    """A folder holding pipeline/, stages/ and params.yaml with `values` set."""
    root = Path(tempfile.mkdtemp(prefix="gpu_stages_"))
    for package in ("pipeline", "stages"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    raw = with_overrides(read_params_file(REPO / "params.yaml"), values)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return root


def mirror() -> str | None:
    """Where the stages read the official files: SPARSEJEPA_DATA_MIRROR, else the checkout's downloaded copy
    (read as a mirror, so nothing is written into the checkout), else None (the network)."""
    if os.environ.get(MIRROR_ENV, "").strip():
        return os.environ[MIRROR_ENV]
    local = REPO / "data/raw" / DATASET
    return str(local) if local.is_dir() else None


class GpuMemoryPeak:
    """The most GPU memory in use (MiB, over every GPU nvidia-smi lists) while the block ran, sampled twice a
    second; None without nvidia-smi."""

    def __init__(self):
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                used = sum(float(v) for v in out.split())
                self.peak = used if self.peak is None else max(self.peak, used)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return
            self._stop.wait(0.5)

    def __enter__(self) -> "GpuMemoryPeak":
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_stage(root: Path, args: list[str]) -> dict:
    """One stage as its own process in `root`; its wall time and peak memory. A failed stage stops the check."""
    env = {**os.environ, "SPARSEJEPA_MLFLOW": "off", "SPARSEJEPA_CHECKPOINTS": str(root / "checkpoints"),
           "PYTHONPATH": str(root)}
    if mirror():
        env[MIRROR_ENV] = mirror()
    started = time.perf_counter()
    with GpuMemoryPeak() as gpu:
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=root, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise PipelineError(f"gpu_stages: `python -m {' '.join(args)}` failed (exit {proc.returncode}); its "
                            f"output is above (the scratch copy is removed)")
    row = {"stage": " ".join(args), "wall_s": round(time.perf_counter() - started, 1)}
    if gpu.peak is not None:
        return {**row, "peak_memory_mib": gpu.peak, "memory": "GPU, nvidia-smi"}
    return {**row, "peak_memory_mib": round(usage.ru_maxrss / 1024, 1), "memory": "process peak RSS"}


def collect(root: Path, keys: list[str]) -> tuple[dict, dict]:
    """(per pretrained method its pretraining summary figures, per method and encoder its test top-1)."""
    pretrain, top1 = {}, {}
    for key in keys:
        summary = root / "reports/pretrain" / key / "seed0/summary.json"
        if summary.is_file():
            s = json.loads(summary.read_text())
            pretrain[key] = {k: s.get(k) for k in ("img_per_s", "wall_s", "steps", "device", "hardware", "setting",
                                                   "final_loss_jepa", "online_top1_last")}
        for record in sorted((root / "reports/probe" / key / "seed0").glob(f"*/{DATASET}.json")):
            top1.setdefault(key, {})[record.parent.name] = json.loads(record.read_text())["top1"]
    return pretrain, top1


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--methods", help="comma-separated registry keys (default: the default pipeline's)")
    parser.add_argument("pairs", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    extra = key_values(args.pairs)
    keys = args.methods.split(",") if args.methods else methods.keys()
    for key in keys:
        methods.get(key)  # an unknown key fails here, before any work
    values = setting(args.epochs, extra)
    root = scratch_copy(values)
    try:
        stages = [run_stage(root, ["stages.prepare", DATASET])]
        for key in keys:
            for stage in (["stages.pretrain", key, DATASET], ["stages.extract", key], ["stages.probe", key]):
                stages.append(run_stage(root, stage))
        pretrain, top1 = collect(root, keys)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    # An untrained reference's summary names no hardware: the first trained method's does.
    device = next((p["hardware"] for p in pretrain.values() if p.get("hardware")), "unknown machine")
    record = {"device": device, "setting": values, "stages": stages, "pretrain": pretrain, "top1": top1}
    path = write_report(args.out, "stages", record, table_md(record))
    print(table_md(record), end="")
    print(f"wrote {path}")


def table_md(record: dict) -> str:
    """Per stage its wall time and peak memory; per method its pretraining images/s and its encoders' top-1."""
    stages = markdown_table(["stage", "memory measured as", "wall s", "peak memory (MiB)"],
                            [[s["stage"], s["memory"], f"{s['wall_s']:.1f}", f"{s['peak_memory_mib']:.0f}"]
                             for s in record["stages"]], align_right_from=2)
    rows = []
    for key, encoders in record["top1"].items():
        rate = record["pretrain"].get(key, {}).get("img_per_s")
        for encoder, top1 in encoders.items():
            rows.append([key, encoder, DASH if not rate else f"{rate:,.0f}", f"{top1:.2f}"])
    results = markdown_table(["method", "encoder", "pretraining images/s", f"{DATASET} test top-1"], rows,
                             align_right_from=2)
    return f"On {record['device']}.\n\n{stages}\n\n{results}\n"


if __name__ == "__main__":
    run_stage(main)
