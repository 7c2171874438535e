"""Get one official dataset file into the raw folder: already there, from a local mirror, or downloaded.

Every path ends with the file's md5 matching the official one, so later stages can trust the
raw folder. Files are only ever moved into place whole (never a half-download), a mirror file
is linked or copied only after its md5 matches, and the user's mirror is never modified.

A verified file's md5 is remembered beside it (`<file>.md5`, keyed by size and mtime), so a
re-run does not hash a 120 GB archive again. Where no official checksum is published
(Places205), the file's md5 is recorded instead, and the dataset's content checks stand in.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.utils import calculate_md5, download_url

from pipeline.core.atomic import atomic_path, link_or_copy, write_json
from pipeline.core.errors import PipelineError
from pipeline.runtime.progress import StepProgress

MIRROR_ENV = "SPARSEJEPA_DATA_MIRROR"
MD5_NOTE = ".md5"          # suffix of the note that remembers a verified file's md5
BIG_FILE = 512 * 2**20     # files from this size on get a progress bar while hashed
CHUNK = 8 * 2**20

# What a failed fetch can raise: no network / HTTP errors (URLError, HTTPException), disk or
# socket errors (OSError), torchvision's "File not found or corrupted." md5 check (RuntimeError).
_FETCH_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, RuntimeError, ValueError)


@dataclass(frozen=True)
class RemoteFile:
    """One official file, as torchvision's dataset class names it."""
    dataset: str             # display name used in messages, e.g. "FashionMNIST"
    filename: str            # e.g. "train-images-idx3-ubyte.gz"
    md5: str | None          # the official checksum (torchvision's where it knows the file); None: none published
    urls: tuple[str, ...]    # official URLs, tried in order
    rel_path: str            # where the torchvision class looks for it, relative to its root

    def source_entry(self, seen_md5: str | None = None) -> dict:
        """Provenance for meta.json; without an official checksum, the md5 of the file that was used."""
        if self.md5 is None:
            return {"file": self.filename, "md5": seen_md5, "official_md5": None, "url": self.urls[0]}
        return {"file": self.filename, "md5": self.md5, "url": self.urls[0]}

    def checksum_text(self) -> str:
        return f"md5 {self.md5}" if self.md5 else "no official checksum published"


def mirror_from_env() -> Path | None:
    value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value) if value else None


def check_mirror(mirror: Path | None) -> None:
    """A mirror that does not exist is a typo, not "no mirror": say so instead of going to the network."""
    if mirror is not None and not mirror.is_dir():
        raise PipelineError(f"{MIRROR_ENV}={mirror} is not a folder; point it at the folder holding the "
                            f"official dataset files, or unset it")


def md5_of(path: Path) -> str:
    """The file's md5, with a progress bar for large files."""
    size = path.stat().st_size
    if size < BIG_FILE:
        return calculate_md5(path)
    digest = hashlib.md5()
    done = 0
    with open(path, "rb") as f, StepProgress(f"md5 {path.name} (MB)", size // 2**20) as bar:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            bar.update(done // 2**20)
    return digest.hexdigest()


def remembered_md5(path: Path) -> str:
    """md5_of(path), taken from the `<file>.md5` note when size and mtime still match, else computed and noted."""
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        saved = json.loads(path.with_name(path.name + MD5_NOTE).read_text())
        if {k: saved.get(k) for k in key} == key and isinstance(saved.get("md5"), str):
            return saved["md5"]
    except (OSError, ValueError):
        pass
    return remember_md5(path, md5_of(path))


def remember_md5(path: Path, md5: str) -> str:
    """Note `md5` as the md5 of `path` as it is now (size and mtime)."""
    stat = path.stat()
    write_json(path.with_name(path.name + MD5_NOTE), {"md5": md5, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return md5


def fetch_url(url: str, dest: Path, md5: str) -> None:
    """The only network access: torchvision's own download (redirects, https->http retry, md5 check).

    Tests replace this function to simulate being offline.
    """
    download_url(url, root=str(dest.parent), filename=dest.name, md5=md5)


def ensure_file(remote: RemoteFile, root: Path, mirror: Path | None) -> tuple[Path, str, str]:
    """Make `root/remote.rel_path` hold the official file; return its path, its md5 and where it came from."""
    target = root / remote.rel_path
    if target.exists():
        md5 = remembered_md5(target)
        _verify(md5, target, remote, fix="delete it (it will be fetched again) or replace it with the official file")
        return target, md5, "present"
    found = _find_in_mirror(remote, mirror)
    if found is not None:
        md5 = md5_of(found)
        _verify(md5, found, remote, fix="replace it with the official file")
        with atomic_path(target) as tmp:
            tmp.unlink()
            link_or_copy(found, tmp)
        return target, remember_md5(target, md5), f"from the mirror {found}"
    url = _download(remote, target, mirror)
    # torchvision's download checked the official md5 where there is one.
    md5 = remember_md5(target, remote.md5) if remote.md5 else remembered_md5(target)
    return target, md5, f"downloaded from {url}"


def _find_in_mirror(remote: RemoteFile, mirror: Path | None) -> Path | None:
    """The torchvision-layout path first, then the flat file name; the first one that exists wins."""
    if mirror is None:
        return None
    for candidate in (mirror / remote.rel_path, mirror / remote.filename):
        if candidate.is_file():
            return candidate
    return None


def _verify(found: str, path: Path, remote: RemoteFile, fix: str) -> None:
    if remote.md5 is not None and found != remote.md5:
        raise PipelineError(f"{remote.dataset} file {path} has md5 {found} but the official "
                            f"{remote.filename} has md5 {remote.md5}; {fix}")


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
    raise PipelineError(f"{remote.dataset} file {remote.filename} ({remote.checksum_text()}) could not be downloaded "
                        f"({'; '.join(reasons)}); put the official file at {mirror_hint} or {target} and re-run")


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return str(e).splitlines()[0] if str(e) else type(e).__name__
