"""Fetching and unpacking dataset archives. Network access goes through
:func:`fetch` only, so tests can replace it."""
from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

log = logging.getLogger("larq_glt.data")

_CHUNK = 1 << 20


class DownloadError(OSError):
    pass


def default_cache_dir() -> Path:
    """``$LARQ_GLT_DATA_DIR``, else ``$XDG_CACHE_HOME/larq_glt/datasets``
    (``~/.cache/larq_glt/datasets``)."""
    env = os.environ.get("LARQ_GLT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "larq_glt" / "datasets"


def fetch(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Download ``url`` to ``dest`` atomically (a ``.part`` file renamed at the end).
    Raises :class:`DownloadError` on any network or HTTP failure."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, next_report = 0, 0.1
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if total and done / total >= next_report:
                    log.info("  %3.0f%% of %.0f MB", 100 * done / total, total / 2**20)
                    next_report += 0.1
        if total and done != total:
            raise DownloadError(f"incomplete download: {done} of {total} bytes")
        os.replace(part, dest)
    except (OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, DownloadError):
            raise
        raise DownloadError(f"{type(exc).__name__}: {exc}") from exc


def extract_tar(archive: Path, dest_dir: Path, member: str) -> Path:
    """Extract ``archive`` and move its top folder ``member`` to ``dest_dir/member``
    in one rename, so an interrupted extraction never looks like a dataset."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / member
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")  # refuses absolute paths, links out, devices
        if not (tmp / member).is_dir():
            raise DownloadError(f"{archive} does not contain a {member}/ folder")
        os.replace(tmp / member, target)
    except (tarfile.TarError, EOFError) as exc:
        raise DownloadError(f"cannot extract {archive}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url``'s host accepts a TCP connection: a quick check before handing
    a download to a library that would retry for minutes without network."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
