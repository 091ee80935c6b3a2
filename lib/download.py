"""Download, verify and extract archives (DIV2K): resumable, checksummed, atomic.

- Tries each mirror in order; a partial download (`<file>.partial`) resumes with an HTTP Range request.
- Verifies size and sha256; a file that fails is set aside as `<file>.bad-<n>` (never used, never deleted)
  and the next mirror is tried.
- Extracts into a temporary folder next to the target and renames it into place: never half-extracted.
"""
from __future__ import annotations

import hashlib
import http.client
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """An archive could not be fetched or verified; the message says what to do by hand."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def set_aside(path: Path) -> Path:
    """Rename a bad file out of the way, keeping every earlier one."""
    n = 1
    while path.with_name(f"{path.name}.bad-{n}").exists():
        n += 1
    target = path.with_name(f"{path.name}.bad-{n}")
    path.rename(target)
    return target


def _fetch(url: str, partial: Path, expected_bytes: int, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `partial` (Range request when part of it is already there)."""
    from tqdm import tqdm

    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        mode = "ab" if have else "wb"
        with open(partial, mode) as out, tqdm(total=expected_bytes, initial=have, unit="B", unit_scale=True,
                                               desc=partial.name.removesuffix(".partial"), disable=not progress) as bar:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                bar.update(len(chunk))


def download(file: str, mirrors: list[str], folder: Path, expected_bytes: int, sha256: str,
             timeout: float = 30.0, progress: bool = True) -> Path:
    """`folder/file`, downloaded from the first mirror that serves a file with the right size and sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file
    if target.exists():
        return verify(target, expected_bytes, sha256)
    partial = folder / f"{file}.partial"
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + file
        try:
            _fetch(url, partial, expected_bytes, timeout, progress)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:  # keep the partial file
            failures.append(f"{url}: {getattr(error, 'reason', error)!s} ({type(error).__name__})")
            continue
        size = partial.stat().st_size
        if size < expected_bytes:  # the connection ended early: keep what arrived, resume next time
            failures.append(f"{url}: connection ended after {size} of {expected_bytes} bytes (kept, resumes)")
            continue
        if size != expected_bytes or sha256_of(partial) != sha256:
            bad = set_aside(partial)
            failures.append(f"{url}: wrong {'size' if size != expected_bytes else 'sha256'} ({size} bytes), set aside as {bad.name}")
            continue
        partial.replace(target)
        return target
    raise DownloadError(
        f"could not download {file}:\n  " + "\n  ".join(failures)
        + f"\nDownload it by hand from {mirrors[0].rstrip('/')}/{file} ({expected_bytes} bytes, sha256 {sha256}) "
        f"into {folder}, or unzip DIV2K yourself and set DIV2K_DIR to the folder holding it."
    )


def verify(path: Path, expected_bytes: int, sha256: str) -> Path:
    size = path.stat().st_size
    if size != expected_bytes:
        bad = set_aside(path)
        raise DownloadError(
            f"{path.name} has {size} bytes, expected {expected_bytes} (truncated?); set aside as {bad}. Run again to download it anew."
        )
    if sha256_of(path) != sha256:
        bad = set_aside(path)
        raise DownloadError(f"{path.name} has the wrong sha256; set aside as {bad}. Run again to download it anew.")
    return path


def extract(archive: Path, folder: Path, expected_top: str) -> Path:
    """Unzip `archive` so that `folder/expected_top` appears complete or not at all."""
    final = folder / expected_top
    if final.is_dir():
        return final
    staging = folder / f".extract-{expected_top}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as bundle:
            broken = bundle.testzip()
            if broken is not None:
                raise zipfile.BadZipFile(f"corrupt member {broken}")
            bundle.extractall(staging)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        bad = set_aside(archive)
        raise DownloadError(f"{archive.name} is not a readable zip ({error}); set aside as {bad}. Run again to download it anew.") from None
    extracted = staging / expected_top
    if not extracted.is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{archive.name} does not contain a {expected_top}/ folder.")
    extracted.rename(final)
    shutil.rmtree(staging, ignore_errors=True)
    return final
