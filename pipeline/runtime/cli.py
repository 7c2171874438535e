"""What every stage script shares: run from the repo root, turn PipelineError into one line."""
from __future__ import annotations

import sys
from typing import Callable

from pipeline.core.errors import PipelineError
from pipeline.runtime import tracking


def run_stage(main: Callable[[list[str]], None]) -> None:
    """Call main(argv); a PipelineError prints `error: <message>` and exits 1 without a traceback. A DVC stage
    (a `stages.*` module) first checks that its MLflow store can be reached, before any work."""
    try:
        if _stage_module(main).startswith("stages."):
            tracking.check_store()
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
