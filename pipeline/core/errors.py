"""The one exception type users see, and the translation of a damaged file's parse error into it."""
from __future__ import annotations

import contextlib
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Iterator


class PipelineError(Exception):
    """Bad input or environment. The message names the problem and the fix; no traceback is shown."""


# What damaged raw files make the extractors, torchvision's parsers and our list parsers raise.
READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile, pickle.UnpicklingError,
               RuntimeError, ValueError, TypeError, KeyError, IndexError, AssertionError)


@contextlib.contextmanager
def damaged_file(paths: Path | list[Path], what: str) -> Iterator[None]:
    """Turn a parse failure into one line naming the files, instead of a library traceback."""
    try:
        yield
    except READ_ERRORS as e:
        listed = ", ".join(str(p) for p in (paths if isinstance(paths, list) else [paths]))
        reason = (str(e).splitlines() or [""])[0] or type(e).__name__
        # torchvision's own advice ("You can use download=True ...") does not apply here: we pass it.
        reason = reason.split(". You can use download=True")[0]
        raise PipelineError(f"{what} {listed} could not be read ({reason}); the file is damaged: delete it "
                            f"and re-run to fetch the official file again") from None
