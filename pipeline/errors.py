"""The one exception type users see: a problem they can fix, said in one line."""


class PipelineError(Exception):
    """Bad input or environment. The message names the problem and the fix; no traceback is shown."""
