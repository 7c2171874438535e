"""What `dvc exp show` puts in its columns on this checkout: the README's counts (issue 19, item 1).

    python -m pipeline.bench.exp_columns    # prints the counts, writes reports/benchmarks/exp_show_columns.md

Runs `dvc exp show --csv --no-fetch` (seconds; the workspace and the current commit) and sorts its header: DVC's
own columns, metrics (the keys of the pipelines' metrics files), params (params.yaml's keys, and the method
registry's keys the stages declare) and dependencies (a hash per file or folder a stage depends on). A column
none of these explain is counted as such, so the sum is always the header.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.runtime.cli import run_stage

OUT = Path("reports/benchmarks/exp_show_columns.md")
DVC_OWN = frozenset({"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"})
REGISTRY = Path("pipeline/methods/registry.yaml")


def flat_keys(tree: dict, prefix: str = "") -> set[str]:
    """A nested mapping's leaf keys, dotted as DVC names them."""
    out: set[str] = set()
    for key, value in tree.items():
        out |= flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"}
    return out


@dataclass(frozen=True)
class Columns:
    dvc: int
    metrics: int
    params: int
    registry: int
    dependencies: int
    unexplained: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.dvc + self.metrics + self.params + self.registry + self.dependencies + len(self.unexplained)


def classify(header: Iterable[str], metrics: set[str], params: set[str], registry: set[str],
             paths: set[str]) -> Columns:
    """Sort an `exp show` header: a name is DVC's own, a metric, a params.yaml key, a registry key, or a
    dependency path (a name in `paths`); anything else is unexplained."""
    counts = {"dvc": 0, "metrics": 0, "params": 0, "registry": 0, "dependencies": 0}
    unexplained = []
    for name in header:
        kind = ("dvc" if name in DVC_OWN else "metrics" if name in metrics else "params" if name in params
                else "registry" if name in registry else "dependencies" if name in paths else None)
        if kind is None:
            unexplained.append(name)
        else:
            counts[kind] += 1
    return Columns(**counts, unexplained=tuple(unexplained))


def render(c: Columns) -> str:
    extra = f", and {len(c.unexplained)} none of these explain ({', '.join(c.unexplained)})" if c.unexplained else ""
    return (f"`dvc exp show --csv` on this commit has {c.total} columns: {c.dvc} of DVC's own (the experiment, "
            f"its revision, date, ...), {c.metrics} metrics (the pipelines' `metrics.json`), {c.params} "
            f"params.yaml keys, {c.registry} keys of the method registry that stages declare as params, and "
            f"{c.dependencies} dependency hashes (a column per file or folder a stage depends on){extra}.\n")


def measured() -> Columns:
    try:
        shown = subprocess.run(["dvc", "exp", "show", "--csv", "--no-fetch"], capture_output=True, text=True,
                               check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise PipelineError(f"`dvc exp show --csv` failed ({e}); run this in the repository root with dvc "
                            f"installed") from e
    header = next(csv.reader(io.StringIO(shown)))
    metrics = set().union(*(flat_keys(json.loads(p.read_text())) for p in Path("reports").rglob("metrics.json")))
    params = flat_keys(yaml.safe_load(Path("params.yaml").read_text()))
    registry = flat_keys(yaml.safe_load(REGISTRY.read_text()))
    # a path: DVC names a dependency by it, and no params or metrics key holds a slash (an output of a pipeline
    # not run in this checkout is a dependency that does not exist here)
    paths = {name for name in header if "/" in name or Path(name).exists()}
    return classify(header, metrics, params, registry, paths)


def main(argv: list[str]) -> None:
    text = render(measured())
    print(text, end="")
    with atomic_path(OUT) as tmp:
        tmp.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    run_stage(main)
