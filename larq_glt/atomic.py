"""Atomic file and directory writes: a reader sees the old file or the new one,
never half of one, and an interrupted write loses nothing already written.

```python
from larq_glt import atomic
atomic.write_json("runs/a/metrics.json", {"accuracy": 0.9})
with atomic.directory("build/nucleo") as tmp:   # filled, then renamed into place
    (tmp / "model.c").write_text("...")
```

``directory`` only ever replaces a directory this tool wrote: each one gets a
marker file (``.larq-glt-output``); anything else (a run directory, a folder
with other files, a file, the current directory or a parent of it or of the
project) is refused with :class:`OutputError` before anything is touched.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["write_bytes", "write_text", "write_json", "replace_file", "directory", "check_output_dir",
           "OutputError", "MARKER"]

MARKER = ".larq-glt-output"
_PROJECT = Path(__file__).resolve().parent.parent
# Files that make a directory a training run (see larq_glt.runs); not model.keras
# alone: the shipped model folder is an export with its model.keras beside it.
_RUN_FILES = ("config.json", "state.json", "checkpoints")
# Outputs written before the marker existed: an export, a firmware build.
_LEGACY = ({"model.tflite", "encoder.json", "model.json", "report.json", "report.md"},
           {"Makefile", "main.c", "startup.c", "board.c", "model.h", "linker.ld"})


class OutputError(ValueError):
    """An output path that cannot be (re)placed without destroying something."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same directory + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(o):
    # numpy scalars and arrays, Paths
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _swap_dir(new: Path, path: Path) -> None:
    """Rename ``new`` to ``path``; an existing ``path`` moves aside to a fresh
    temp name first (never a fixed name, which could be someone's folder)."""
    if not path.exists():
        os.replace(new, path)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    os.replace(path, aside / "old")
    os.replace(new, path)
    shutil.rmtree(aside, ignore_errors=True)


def check_output_dir(path) -> Path:
    """Raise :class:`OutputError` unless ``path`` can become an output directory
    without losing anything: absent, empty, or written by this tool. Also
    refuses paths that cannot be created (under a file, not writable)."""
    path = Path(path)
    real = path.resolve()
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise OutputError(f"{path} is the current directory or a parent of it; give a new subdirectory")
    if real == _PROJECT or real in _PROJECT.parents:
        raise OutputError(f"{path} is the larq-glt project or a parent of it; give a new subdirectory")
    if path.is_symlink():
        raise OutputError(f"{path} is a symbolic link; give a real directory")
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{path} is a file, not an output directory; refusing to replace it")
        found = [n for n in _RUN_FILES if (path / n).exists()]
        if found:  # even if marked: a run may have been trained into an old output
            raise OutputError(f"{path} is a training run directory ({', '.join(found)}); refusing to replace "
                              f"it; give another output directory, e.g. {path / 'export'}")
        names = {p.name for p in path.iterdir()}
        if MARKER in names or any(sig <= names for sig in _LEGACY):
            return path
        if names:
            raise OutputError(f"{path} already holds files that larq-glt did not write (no {MARKER}); "
                              f"refusing to replace them; give a new or empty directory")
    _check_creatable(path)
    return path


def _check_creatable(path: Path) -> None:
    """The nearest existing ancestor must be a directory we can write in: tried
    for real (a temp dir made and removed), as permission bits lie for root."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot create {path}: {parent} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".larq-glt-probe.", dir=parent))
    except OSError as e:
        raise OutputError(f"cannot create {path}: {parent} is not writable ({e.strerror})") from None


@contextlib.contextmanager
def replace_file(path):
    """Yield a temp path to write with any library (e.g. ``model.save``); it
    replaces ``path`` only if the block finishes without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = tmpdir / path.name
    try:
        yield tmp
        if tmp.is_dir():
            _swap_dir(tmp, path)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def directory(path):
    """Yield a temp directory; on success it replaces ``path`` as a whole.

    A failure leaves ``path`` as it was (the previous complete output, or
    nothing), so no half-written output directory is ever seen. ``path`` is
    checked first (:func:`check_output_dir`) and marked as ours at the end.
    """
    path = check_output_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        (tmp / MARKER).write_text("written by larq-glt; replaced as a whole by its next run\n")
        check_output_dir(path)  # again: something may have appeared meanwhile
        _swap_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
