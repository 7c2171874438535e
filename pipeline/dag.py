"""dvc.yaml and the other pipelines' (ladder/, bases/, standard/dvc.yaml), written from the method registry,
the stage templates below and the import graph: `python -m pipeline.dag` writes them, `python -m pipeline.dag
--check` exits 1 when a committed file differs from what it would write (a test runs the check).

Each stage's code deps are the repository files its command imports (pipeline/core/codebase.py, the
same graph the checkpoint fingerprint hashes), plus the config module of every params block it
declares (pipeline/config/params.py imports those by name). Each method's stages declare exactly the
params blocks its registry entry lists, less the keys the entry fixes, plus its entry's `build` and
`fixed`, so `dvc exp run -S sparsity.lambda=0.1` re-runs the branches of the methods that read lambda
and nothing else. Nobody edits the YAML by hand.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import yaml

from pipeline import artifacts, methods
from pipeline.config.params import config_class, spelled
from pipeline.core.codebase import REPO, code_files, module_file
from pipeline.core.errors import PipelineError
from pipeline.report.metrics import metrics_json, pretrain_curves_csv
from pipeline.report.sweep_results import sweep_csv

REGISTRY = "pipeline/methods/registry.yaml"
PIXELS = "pixels"
# Files a stage reads at run time that are not Python imports: the registry (its report's names, goals and
# figures) and the report's templates.
REPORT_DATA = (REGISTRY,)
# Imports that static analysis cannot see: the prepare stage loads its dataset's module by name.
SOURCES = "pipeline.data.sources"

HEADERS = {
    None: """\
# Written by `python -m pipeline.dag` from pipeline/methods/registry.yaml, the stage templates in
# pipeline/dag.py and the import graph; do not edit (a test fails when this file differs from what the
# command writes).
# raw -> prepared -> encoders -> features -> probes -> report: one stage per arrow, per dataset
# (params.yaml's data.probe) for preparation and per method (the registry) after it; a method's stages
# run every seed and every probed dataset in one process, since starting a stage (imports) costs
# seconds. The pixel controls (raw, PCA, random projection) have their own extract and probe stage.
# Each stage declares the params it reads and the code its command imports, so a change re-runs
# exactly what it affects: `dvc exp run -S sparsity.lambda=0.1` re-runs SparseJEPA's branch and the
# report, nothing else. pipeline/runtime (progress bars, Ctrl-C, MLflow) cannot change an output and is
# never a dep.
""",
    "ladder": """\
# Written by `python -m pipeline.dag` (see dvc.yaml); do not edit.
# SparseJEPA's ablation ladder: the default pipeline's stage templates over the registry's `ladder`
# methods, from JEPA to SparseJEPA one addition at a time, with the raw-pixel and untrained references,
# writing under data/ladder and reports/ladder (its report: reports/ladder/results.md). `dvc repro`
# (dvc.yaml) leaves it out; run it with
#   dvc exp run ladder/dvc.yaml        (or dvc repro ladder/dvc.yaml)
# It shares the default pipeline's prepared data and params.yaml; JEPA and SparseJEPA resume from the
# default pipeline's finished checkpoints (same params and code), so only the new rungs pretrain.
""",
    "bases": """\
# Written by `python -m pipeline.dag` (see dvc.yaml); do not edit.
# JEPA's anti-collapse bases: the default pipeline's stage templates over the registry's `bases` methods
# (JEPA, JEPA + VICReg, JEPA + SIGReg) with the pixel controls and the untrained reference, writing under
# data/bases and reports/bases (its report: reports/bases/results.md). `dvc repro` (dvc.yaml) leaves it
# out; run it with
#   dvc exp run bases/dvc.yaml         (or dvc repro bases/dvc.yaml)
# JEPA resumes from the default pipeline's finished checkpoints (same params and code).
""",
    "standard": """\
# Written by `python -m pipeline.dag` (see dvc.yaml); do not edit.
# The standard CPU setting's pipeline: the default pipeline's stage templates over the registry's `standard`
# methods (JEPA, JEPA + VICReg) with the pixel controls and the untrained reference,
# writing under data/standard and reports/standard (its report: reports/standard/results.md). Run it with
# the setting's overrides (pipeline/settings/standard.yaml):
#   python -m pipeline.settings standard | xargs dvc exp run standard/dvc.yaml -n standard
""",
}


def dvc_file(under: str | None) -> Path:
    return Path("dvc.yaml") if under is None else Path(under) / "dvc.yaml"


def _code(entries: list[str], blocks: list[str]) -> list[str]:
    """The files `entries` import, with the config module of every declared params block."""
    configs = [f"pipeline.config.{b}" for b in blocks if module_file(f"pipeline.config.{b}") is not None]
    return [p.as_posix() for p in code_files([*entries, *configs])]


def _block_params(method: methods.Method) -> list[str]:
    """The params a method's stage declares: its blocks whole, or key by key less the keys it fixes."""
    out = ["seeds"]
    for block in method.params:
        fixed = {k.split(".", 1)[1] for k in method.fixed if k.split(".")[0] == block}
        if not fixed:
            out.append(block)
            continue
        cls = config_class(block)
        out += [f"{block}.{spelled(cls, f.name)}" for f in dataclasses.fields(cls) if spelled(cls, f.name) not in fixed]
    return out


def _not_cached(paths: list[str]) -> list[dict]:
    return [{p: {"cache": False}} for p in paths]


class Templates:
    """The stage templates of one pipeline (None: the default; else its outputs live under data/<under>,
    reports/<under>, and its stages take `--under <under>`)."""

    def __init__(self, under: str | None):
        self.under = under
        self.data = "data" if under is None else f"data/{under}"
        self.reports = "reports" if under is None else f"reports/{under}"
        self.args = "" if under is None else f" --under {under}"
        self.wdir = {} if under is None else {"wdir": ".."}

    def _stage(self, cmd: str, deps: list[str], params: list, outs: list) -> dict:
        return {**self.wdir, "cmd": cmd + self.args, "deps": deps, "params": params, "outs": outs}

    def prepare(self) -> dict:
        """One stage per probed dataset (a foreach over params.yaml's data.probe: it follows `-S data.probe=`)."""
        datasets = [p.stem for p in (REPO / "pipeline/data/sources").glob("*.py") if not p.stem.startswith("_")]
        # model.patch_size: only to refuse an image size the encoder cannot patch, before preparing anything.
        code = _code(["stages.prepare", *(f"{SOURCES}.{d}" for d in sorted(datasets))],
                     ["data", "subsets", "model"])
        own = {f"pipeline/data/sources/{d}.py" for d in datasets}
        deps = [p for p in code if p not in own] + ["pipeline/data/sources/${item}.py"]
        return {"foreach": "${data.probe}", "do": {
            "cmd": "python -m stages.prepare ${item}", "deps": deps,
            "params": ["data.image_size", "model.patch_size", "subsets.${item}"],
            "outs": ["data/prepared/${item}"]}}

    def pretrain(self, m: methods.Method) -> dict:
        blocks = _block_params(m)
        entry = [f"{methods.section(self.under)}.{m.key}.{f}" for f in ("build", *(["fixed"] if m.fixed else []))]
        code = _code(["stages.pretrain", f"pipeline.methods.{m.module}"], [b.split(".")[0] for b in blocks])
        return self._stage(f"python -m stages.pretrain {m.key} ${{data.pretrain}}",
                           code + ["data/prepared/${data.pretrain}"], blocks + [{REGISTRY: entry}],
                           [f"{self.data}/models/{m.key}", *_not_cached([f"{self.reports}/pretrain/{m.key}"])])

    def extract(self, key: str) -> dict:
        # The pixel controls' projections are as wide as the encoders' features, which the model makes.
        blocks = ["seeds", "data", "model", "extract"] if key == PIXELS else ["seeds", "data", "extract"]
        models = [] if key == PIXELS else [f"{self.data}/models/{key}"]
        return self._stage(f"python -m stages.extract {key}", _code(["stages.extract"], blocks) + models +
                           ["data/prepared"], blocks, [f"{self.data}/features/{key}"])

    def probe(self, key: str) -> dict:
        blocks = ["seeds", "data", "extract", "probe"]
        return self._stage(f"python -m stages.probe {key}", _code(["stages.probe"], blocks) +
                           [f"{self.data}/features/{key}"], blocks,
                           _not_cached([f"{self.reports}/probe/{key}"]))

    def report(self) -> dict:
        blocks = ["seeds", "data", "extract", "probe", "report"]
        templates = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "pipeline/report").iterdir()
                           if p.is_file() and p.suffix not in (".py", ".pyc"))
        # The group figure's training images; the default pipeline's report also draws the collected sweeps.
        data = ["data/prepared/${data.pretrain}", *(["reports/sweep"] if self.under is None else []),
                f"{self.reports}/probe", f"{self.reports}/pretrain"]
        outs = [f"{self.reports}/{name}" for name in ("results.md", "results.csv", "results_summary.csv", "metrics.json",
                                                      "figures", "plots")]
        return self._stage("python -m stages.report", _code(["stages.report"], blocks) + [*REPORT_DATA, *templates]
                           + data, blocks, _not_cached(outs))


def stage_name(stage: str, key: str) -> str:
    """`pretrain-sparse_jepa`: one stage of a method (method keys are identifiers, so `-` is unambiguous)."""
    return f"{stage}-{key}"


def pipeline_stages(under: str | None) -> dict:
    """The `stages:` mapping of one pipeline's dvc.yaml."""
    t = Templates(under)
    stages = {"prepare": t.prepare()} if under is None else {}
    for m in methods.pipeline_methods(under):
        stages[stage_name("pretrain", m.key)] = t.pretrain(m)
    for key in (PIXELS, *methods.pipeline_keys(under)):
        stages[stage_name("extract", key)] = t.extract(key)
    for key in (PIXELS, *methods.pipeline_keys(under)):
        stages[stage_name("probe", key)] = t.probe(key)
    stages["report"] = t.report()
    return stages


def _reports(under: str | None) -> Path:
    return artifacts.REPORTS if under is None else artifacts.REPORTS / under


def _here(path: Path, under: str | None) -> str:
    """A repository path as the pipeline's dvc.yaml names it (top-level metrics and plots are relative to its
    folder: `wdir` only moves the stages)."""
    return path.as_posix() if under is None else f"../{path.as_posix()}"


def plots(under: str | None) -> list[dict]:
    """DVC's plots of one pipeline: the pretraining curves (a line per pretrained method), and in the default
    pipeline each collected sweep (top-1 of the swept method and of the baseline against the swept value)."""
    pretrained = [m.key for m in methods.pipeline_methods(under) if m.pretrained]
    out = [{_here(pretrain_curves_csv(_reports(under)), under): {
        "x": "step", "y": pretrained, "title": "JEPA prediction loss, mean over seeds",
        "x_label": "step", "y_label": "prediction loss"}}]
    if under is None:
        for m in methods.swept():
            out.append({_here(sweep_csv(m), under): {
                "x": "value", "y": ["top1_mean", "baseline_top1_mean"], "template": "linear",
                "title": f"{m.name}: probe top-1 against {m.sweep} (collected sweep)", "x_label": m.sweep,
                "y_label": "top-1 (%)"}})
    return out


def render(under: str | None) -> str:
    """The text of one pipeline's dvc.yaml."""
    doc = {}
    if under is not None:
        doc["vars"] = ["../params.yaml"]  # the default pipeline's (DVC reads a dvc.yaml's own folder's otherwise)
    doc["stages"] = pipeline_stages(under)
    doc["metrics"] = [_here(metrics_json(_reports(under)), under)]
    doc["plots"] = plots(under)
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=120)
    return HEADERS[under] + body


def main(argv: list[str] | None = None, root: Path = REPO) -> int:
    parser = argparse.ArgumentParser(description="Write dvc.yaml and the other pipelines' dvc.yaml files from the method registry.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for under in methods.pipelines():
        path, text = root / dvc_file(under), render(under)
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(str(dvc_file(under)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {dvc_file(under)}")
    if stale:
        print(f"{', '.join(stale)} differ from what the registry and the code make; run `python -m pipeline.dag`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
