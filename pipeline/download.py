"""Get one official dataset file into the raw folder: already there, from a local mirror, or downloaded.

Every path ends with the file's md5 matching the official one, so later stages can trust the
raw folder. Files are only ever moved into place whole (never a half-download), a mirror file
is copied only after its md5 matches, and the user's mirror is never modified.
"""
from __future__ import annotations

import http.client
import os
import shutil
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.utils import calculate_md5, download_url

from pipeline.atomic import atomic_path
from pipeline.errors import PipelineError

MIRROR_ENV = "SPARSEJEPA_DATA_MIRROR"

# What a failed fetch can raise: no network / HTTP errors (URLError, HTTPException), disk or
# socket errors (OSError), torchvision's "File not found or corrupted." md5 check (RuntimeError).
_FETCH_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, RuntimeError, ValueError)


@dataclass(frozen=True)
class RemoteFile:
    """One official file, as torchvision's dataset class names it."""
    dataset: str             # display name used in messages, e.g. "FashionMNIST"
    filename: str            # e.g. "train-images-idx3-ubyte.gz"
    md5: str                 # the official checksum, taken from the torchvision class
    urls: tuple[str, ...]    # official URLs, tried in order
    rel_path: str            # where the torchvision class looks for it, relative to its root

    def source_entry(self) -> dict:
        """Provenance for meta.json."""
        return {"file": self.filename, "md5": self.md5, "url": self.urls[0]}


def mirror_from_env() -> Path | None:
    value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value) if value else None


def check_mirror(mirror: Path | None) -> None:
    """A mirror that does not exist is a typo, not "no mirror": say so instead of going to the network."""
    if mirror is not None and not mirror.is_dir():
        raise PipelineError(f"{MIRROR_ENV}={mirror} is not a folder; point it at the folder holding the "
                            f"official dataset files, or unset it")


def md5_of(path: Path) -> str:
    return calculate_md5(path)


def fetch_url(url: str, dest: Path, md5: str) -> None:
    """The only network access: torchvision's own download (redirects, https->http retry, md5 check).

    Tests replace this function to simulate being offline.
    """
    download_url(url, root=str(dest.parent), filename=dest.name, md5=md5)


def ensure_file(remote: RemoteFile, root: Path, mirror: Path | None) -> tuple[Path, str]:
    """Make `root/remote.rel_path` hold the official file; return its path and where it came from."""
    target = root / remote.rel_path
    if target.exists():
        _verify(target, remote, fix="delete it (it will be fetched again) or replace it with the official file")
        return target, "present"
    found = _find_in_mirror(remote, mirror)
    if found is not None:
        _verify(found, remote, fix="replace it with the official file")
        _copy_atomically(found, target)
        return target, f"copied from {found}"
    url = _download(remote, target, mirror)
    return target, f"downloaded from {url}"


def _find_in_mirror(remote: RemoteFile, mirror: Path | None) -> Path | None:
    """The torchvision-layout path first, then the flat file name; the first one that exists wins."""
    if mirror is None:
        return None
    for candidate in (mirror / remote.rel_path, mirror / remote.filename):
        if candidate.is_file():
            return candidate
    return None


def _verify(path: Path, remote: RemoteFile, fix: str) -> None:
    found = md5_of(path)
    if found != remote.md5:
        raise PipelineError(f"{remote.dataset} file {path} has md5 {found} but the official "
                            f"{remote.filename} has md5 {remote.md5}; {fix}")


def _copy_atomically(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _download(remote: RemoteFile, target: Path, mirror: Path | None) -> str:
    reasons = []
    for url in remote.urls:
        try:
            # atomic_path: an interrupted or failed download never leaves a partial file behind.
            with atomic_path(target) as tmp:
                fetch_url(url, tmp, remote.md5)
            return url
        except _FETCH_ERRORS as e:
            reasons.append(f"{url}: {_reason(e)}")
    mirror_hint = mirror / remote.rel_path if mirror is not None else f"${MIRROR_ENV}/{remote.rel_path}"
    raise PipelineError(f"{remote.dataset} file {remote.filename} (md5 {remote.md5}) could not be downloaded "
                        f"({'; '.join(reasons)}); put the official file at {mirror_hint} or {target} and re-run")


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return str(e).splitlines()[0] if str(e) else type(e).__name__
