"""What every stage script shares: run from the repo root, turn PipelineError into one line."""
from __future__ import annotations

import sys
from typing import Callable

from pipeline.core.errors import PipelineError


def run_stage(main: Callable[[list[str]], None]) -> None:
    """Call main(argv); a PipelineError prints `error: <message>` and exits 1 without a traceback."""
    try:
        main(sys.argv[1:])
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume from the last checkpoint", file=sys.stderr)
        sys.exit(130)
