"""What every stage script shares: run from the repo root, turn PipelineError into one line."""
from __future__ import annotations

import os
import sys
from typing import Callable

from pipeline.core.errors import PipelineError
from pipeline.runtime import tracking
from pipeline.runtime.launcher import CLUSTER_STAGES, IN_JOB, load_launcher


def run_stage(main: Callable[[list[str]], None]) -> None:
    """Call main(argv); a PipelineError prints `error: <message>` and exits 1 without a traceback. A DVC stage
    (a `stages.*` module) first checks that its MLflow store can be reached, before any work. With params.yaml's
    launcher.kind: slurm the pretrain stage runs as a cluster job instead (pipeline/runtime/slurm.py): decided
    here, output-neutral code, so the stage's own file and its checkpoint fingerprint stay as they are."""
    try:
        module = _stage_module(main)
        if module.startswith("stages."):
            tracking.check_store()
        if not ran_as_job(module, sys.argv[1:]):
            main(sys.argv[1:])
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume from the last checkpoint", file=sys.stderr)
        sys.exit(130)


def _stage_module(main: Callable) -> str:
    """The module `main` belongs to, also when it runs as `python -m stages.<name>` (then named __main__)."""
    if main.__module__ != "__main__":
        return main.__module__
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else ""


def ran_as_job(module: str, argv: list[str]) -> bool:
    """Run stage `module` as a cluster job if params.yaml's launcher says so, and return True (this process only
    submitted it and waited); False: the caller runs the stage itself."""
    if module not in CLUSTER_STAGES or os.environ.get(IN_JOB):
        return False
    launcher = load_launcher()
    if launcher.kind == "local":
        return False
    from pipeline.runtime import slurm  # submitit is imported only where it is used

    slurm.run_as_job(launcher, module, argv)
    return True
