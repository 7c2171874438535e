"""MLflow: one experiment, one run per stage execution, nested under one parent run per DVC experiment.

A DVC experiment's parent run is named and tagged by the experiment's name and baseline commit (a plain `dvc
repro` is the experiment `workspace` of its commit, so repeated repros of one commit share a parent); the
first stage to log creates it, every stage's run is its child (the UI's tree), and the report stage puts the
headline metrics and the results table on it and ends it.

The store defaults to SQLite at the repository root (the real one also inside `dvc exp run
--temp` / `--queue`, via DVC_ROOT); MLFLOW_TRACKING_URI points it elsewhere, and
SPARSEJEPA_MLFLOW=off turns tracking off. mlflow is imported lazily: it costs seconds.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pipeline.core.errors import PipelineError
from pipeline.core.workspace import repo_root

EXPERIMENT = os.environ.get("SPARSEJEPA_MLFLOW_EXPERIMENT", "sparsejepa")
# MLflow 3's UI opens an experiment without this tag on its GenAI pages; with it, on the training runs table.
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root().resolve() / 'mlflow.db'}"


def enabled() -> bool:
    return os.environ.get("SPARSEJEPA_MLFLOW", "on").lower() not in ("0", "off", "false", "no")


def check_store(timeout: float = 5.0) -> None:
    """Fail in seconds, before any work, when the tracking store cannot be reached: an HTTP server that does not
    answer, or a SQLite or file store whose folder is missing or read-only. (MLflow itself would retry an
    unreachable server for minutes, after the stage's work.)"""
    if not enabled():
        return
    uri = tracking_uri()
    fix = "start it or point MLFLOW_TRACKING_URI at a reachable store, or set SPARSEJEPA_MLFLOW=off to run untracked"
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("http", "https"):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
        except urllib.error.HTTPError:
            pass  # the server answered: reachable (an older server may lack /health)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise PipelineError(f"MLflow tracking store {uri} is unreachable ({reason}); {fix}") from None
        return
    if scheme in ("sqlite", "file", ""):
        path = Path(uri.split(":///", 1)[1] if ":///" in uri else urllib.parse.urlparse(uri).path or uri)
        folder = path if scheme == "file" or scheme == "" else path.parent
        while not folder.exists() and folder != folder.parent:  # a missing folder is made, if its parent allows
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            raise PipelineError(f"MLflow tracking store {uri}: {folder} is not writable; {fix}")


def dvc_experiment() -> str:
    """The DVC experiment's name inside `dvc exp run`; `workspace` for a plain `dvc repro`."""
    return os.environ.get("DVC_EXP_NAME") or "workspace"


def baseline_rev() -> str:
    rev = os.environ.get("DVC_EXP_BASELINE_REV")
    if rev:
        return rev
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=repo_root(), timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _retry(fn, *args, attempts: int = 5, **kwargs):
    # Parallel `dvc exp run --queue` workers share one SQLite file; a locked database is transient.
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # mlflow wraps sqlalchemy's OperationalError in its own types
            if "locked" not in str(e).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.5 * 2 ** attempt)


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run read, as mlflow.log_input records it (the runs table's Dataset column)."""
    name: str
    digest: str
    source: str                 # where it comes from (its official URL)
    context: str                # what the run did with it: pretrain, probe
    tags: dict[str, str] = field(default_factory=dict)  # split sizes and the like


class Run:
    """A stage's MLflow run, or a no-op when tracking is off. Use as a context manager. `span` (start, end in
    epoch seconds) gives a run logged after its work (the probes, done in worker processes) the work's
    duration instead of the logging's."""

    def __init__(self, stage: str, method: str | None = None, dataset: str | None = None,
                 seed: int | None = None, params: dict | None = None, run_id: str | None = None,
                 encoder: str | None = None, inputs: Iterable[DatasetInput] = (),
                 span: tuple[float, float] | None = None):
        self.stage, self.method, self.dataset, self.seed, self.encoder = stage, method, dataset, seed, encoder
        self.params = params or {}
        self.run_id = run_id
        self.inputs, self.span = list(inputs), span
        self._mlflow = None

    def __enter__(self) -> "Run":
        if not enabled():
            return self
        try:
            self._start()
        except Exception as e:  # noqa: BLE001 - whatever the store raises, the stage's work goes on
            self._lost(e)
        return self

    def _lost(self, error: Exception) -> None:
        """The store went away after the stage's start check: say so once and go on untracked, so that no computed
        output waits on (or dies with) the store."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(f"warning: MLflow store {tracking_uri()} failed ({type(error).__name__}: {first[:200]}); this "
              f"{self.stage} run goes on untracked and writes its outputs as usual", file=sys.stderr, flush=True)
        self._mlflow = None

    def _call(self, fn, *args, **kwargs) -> None:
        if self._mlflow is None:
            return
        try:
            _retry(fn, *args, **kwargs)
        except Exception as e:  # noqa: BLE001
            self._lost(e)

    def _start(self) -> None:
        _http_patience()
        import mlflow

        self._mlflow = mlflow
        own_store = "MLFLOW_TRACKING_URI" not in os.environ  # read first: set_tracking_uri sets it
        mlflow.set_tracking_uri(tracking_uri())
        experiment = _retry(mlflow.get_experiment_by_name, EXPERIMENT)
        if experiment is None:
            location = (repo_root() / "mlartifacts").as_uri() if own_store else None
            experiment_id = _retry(mlflow.create_experiment, EXPERIMENT, artifact_location=location,
                                   tags={KIND_TAG: KIND})
        else:
            experiment_id = experiment.experiment_id
            if experiment.tags.get(KIND_TAG) != KIND:  # a store made before the tag
                _retry(mlflow.MlflowClient().set_experiment_tag, experiment_id, KIND_TAG, KIND)
        experiment_name, rev = dvc_experiment(), baseline_rev()
        tags = {"dvc_exp": experiment_name, "dvc_baseline_rev": rev, "stage": self.stage,
                PARENT_TAG: _parent_run(mlflow, experiment_id, experiment_name, rev)}
        for key in ("method", "dataset", "seed", "encoder"):
            if getattr(self, key) is not None:
                tags[key] = str(getattr(self, key))
        # Nested under the experiment's parent, a run is named by what tells it from its siblings, the method
        # first: the UI's run-name column shows about 15 characters (the stage is also the Source column).
        seed = None if self.seed is None else f"seed{self.seed}"
        name = "/".join(str(p) for p in (self.method, seed, self.encoder, self.dataset, self.stage) if p)
        if self.run_id and not _run_exists(mlflow, self.run_id):
            # The checkpoint remembers a run this store does not hold (another store, or a deleted db).
            print(f"note: MLflow run {self.run_id} is not in {tracking_uri()}; logging to a new run")
            self.run_id = None
        # Host metrics (CPU, memory, GPU where pynvml is present) for the long stage; psutil is what MLflow needs.
        system = self.stage == "pretrain" and importlib.util.find_spec("psutil") is not None
        if not self.run_id and self.span is not None:  # made with the work's start time, then resumed
            self.run_id = _retry(mlflow.MlflowClient().create_run, experiment_id, start_time=int(self.span[0] * 1000),
                                 tags=tags, run_name=name).info.run_id
            fresh = True
        else:
            fresh = not self.run_id
        if self.run_id:
            run = _retry(mlflow.start_run, run_id=self.run_id, log_system_metrics=system)
        else:
            run = _retry(mlflow.start_run, experiment_id=experiment_id, run_name=name, tags=tags,
                         log_system_metrics=system)
        if fresh and self.params:
            _retry(mlflow.log_params, {k: _short(v) for k, v in self.params.items()})
        self.run_id = run.info.run_id
        if fresh:
            from mlflow.data.http_dataset_source import HTTPDatasetSource
            from mlflow.data.meta_dataset import MetaDataset

            for d in self.inputs:
                _retry(mlflow.log_input, MetaDataset(HTTPDatasetSource(d.source), name=d.name, digest=d.digest),
                       context=d.context, tags=d.tags)

    def __exit__(self, exc_type, *exc) -> None:
        status = "FINISHED" if exc_type is None else "KILLED"
        self._call(getattr(self._mlflow, "end_run", None), status=status)
        if self.span is not None and self._mlflow is not None:  # end_run stamped now: the work ended earlier
            self._call(self._mlflow.MlflowClient().set_terminated, self.run_id, status,
                       end_time=int(self.span[1] * 1000))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._mlflow is not None:
            clean = {k: float(v) for k, v in metrics.items() if v is not None}
            self._call(self._mlflow.log_metrics, clean, step=step)

    def log_artifacts(self, paths: Iterable[Path], folder: str | None = None) -> None:
        for path in paths:
            self._call(getattr(self._mlflow, "log_artifact", None), str(path), artifact_path=folder)


PARENT = "sparsejepa_parent"   # tag of a DVC experiment's parent run
PARENT_TAG = "mlflow.parentRunId"  # what MLflow's UI nests a run under


_PARENTS: dict[tuple[str, str, str, str], str] = {}  # per process: a probe stage logs dozens of runs


def _parent_run(mlflow, experiment_id: str, name: str, rev: str) -> str:
    """The id of the parent run of DVC experiment `name` on baseline `rev`, created by the first stage that logs
    (looked up once per process and store)."""
    key = (tracking_uri(), experiment_id, name, rev)
    if key not in _PARENTS:
        _PARENTS[key] = _find_or_create_parent(mlflow, experiment_id, name, rev)
    return _PARENTS[key]


def _find_or_create_parent(mlflow, experiment_id: str, name: str, rev: str) -> str:
    found = _retry(mlflow.search_runs, [experiment_id], output_format="list", max_results=1,
                   filter_string=f"tags.{PARENT} = 'true' and tags.dvc_exp = '{name}' "
                                 f"and tags.dvc_baseline_rev = '{rev}'")
    if found:
        return found[0].info.run_id
    client = mlflow.MlflowClient()
    run = _retry(client.create_run, experiment_id, run_name=f"{name} @ {rev[:7]}",
                 tags={PARENT: "true", "dvc_exp": name, "dvc_baseline_rev": rev})
    return run.info.run_id


def finish_parent(metrics: dict[str, float], paths: Iterable[Path], folder: str = "report") -> None:
    """The report stage's last word on its DVC experiment's parent run: the headline metrics, the results table
    and figures, and the run ended (a parent whose report never ran stays RUNNING: visibly unfinished)."""
    if not enabled():
        return
    _http_patience()
    import mlflow

    try:
        mlflow.set_tracking_uri(tracking_uri())
        experiment = _retry(mlflow.get_experiment_by_name, EXPERIMENT)
        client = mlflow.MlflowClient()
        parent = _parent_run(mlflow, experiment.experiment_id, dvc_experiment(), baseline_rev())
        now = int(time.time() * 1000)
        _retry(client.log_batch, parent, metrics=[mlflow.entities.Metric(k, float(v), now, 0)
                                                  for k, v in metrics.items()])
        for path in paths:
            _retry(client.log_artifact, parent, str(path), artifact_path=folder)
        _retry(client.set_terminated, parent, "FINISHED")
    except Exception as e:  # noqa: BLE001 - the report is written: a store gone away must not fail the stage
        print(f"warning: MLflow store {tracking_uri()} failed ({type(e).__name__}); the experiment's parent run "
              f"misses the report's metrics; the report itself is written", file=sys.stderr, flush=True)


def _http_patience() -> None:
    """MLflow retries a dead server for minutes per call (7 tries, doubling waits); a stage that has started
    waits seconds, then goes on untracked (Run._lost). A user's own settings win."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def _run_exists(mlflow, run_id: str) -> bool:
    try:
        mlflow.get_run(run_id)
        return True
    except mlflow.exceptions.MlflowException:
        return False


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def print_compare_links(method_keys: list[str], datasets: list[str]) -> None:
    """Where, in `mlflow ui`, this DVC experiment's probe runs (every seed and encoder) sit side by side.

    A method whose probe DVC took from its cache (e.g. JEPA in a `-S sparsity.lambda=...` experiment)
    has no run in this experiment; its newest probe run stands in, the one that made the cached result.
    """
    if not enabled():
        return
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list",
                              filter_string="tags.stage = 'probe'", order_by=["attributes.start_time DESC"])
    this_exp = dvc_experiment()
    base = "http://127.0.0.1:5000/#"
    print(f"MLflow: run `mlflow ui --backend-store-uri {tracking_uri()} --host 127.0.0.1 --workers 1`, then")
    print(f"  all runs:  {base}/experiments/{experiment.experiment_id}/runs")
    for dataset in datasets:
        ids = []
        for method in method_keys:
            match = [r for r in runs if r.data.tags.get("method") == method and r.data.tags.get("dataset") == dataset]
            own = [r for r in match if r.data.tags.get("dvc_exp") == this_exp]
            newest = {}  # one run per (seed, encoder): the newest, this experiment's first
            for r in own + match:
                newest.setdefault((r.data.tags.get("seed"), r.data.tags.get("encoder")), r.info.run_id)
            ids += list(newest.values())
        if ids:
            quoted = ",".join(f'"{i}"' for i in ids)
            print(f"  {dataset} probes side by side: {base}/compare-runs?runs=[{quoted}]"
                  f"&experiments=[\"{experiment.experiment_id}\"]")
