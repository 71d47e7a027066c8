"""Run directories: where a training run keeps everything it produces.

```
runs/NAME/
  config.json          the training and model configuration (for --resume and export)
  model.keras          the trained model (custom objects register on import)
  metrics.json         per-epoch and final validation accuracy
  summary.txt          weight bits and MACs per layer, and Larq's summary
  summary.json         the same as data
  transfer_curve.png   GLT/thermometer code value against pixel value
  checkpoints/epoch-NNNN/   model + optimizer state after each epoch
  state.json           last completed epoch (written after its checkpoint)
  logs/                TensorBoard
  .lock                while a training writes the run: flock'ed, holds its PID
```

```python
from larq_glt import runs
model = runs.load_model("runs/vww-glt")
```
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

__all__ = ["RunError", "RunDir", "load_model"]


class RunError(RuntimeError):
    """A run directory that is missing, incomplete or inconsistent."""


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    model = property(lambda self: self.path / "model.keras")
    config = property(lambda self: self.path / "config.json")
    metrics = property(lambda self: self.path / "metrics.json")
    state = property(lambda self: self.path / "state.json")
    checkpoints = property(lambda self: self.path / "checkpoints")
    logs = property(lambda self: self.path / "logs")
    summary_txt = property(lambda self: self.path / "summary.txt")
    summary_json = property(lambda self: self.path / "summary.json")
    transfer_curve = property(lambda self: self.path / "transfer_curve.png")

    lockfile = property(lambda self: self.path / ".lock")

    @contextlib.contextmanager
    def lock(self):
        """Hold the run's lock for the block: a second writer gets a RunError
        naming the holder's PID. ``flock`` dies with the process, so a crash
        never leaves a stale lock. The lock file (and the directory, if this
        made it and it stayed empty) is removed on release."""
        created = not self.path.exists()
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file, not a run directory; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = self._open_lock()
        except OSError as e:
            raise RunError(f"cannot use {self.path} as a run directory: {e.strerror or e}") from None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunError(f"{self.path} is in use by another training (PID {holder}); wait for it to "
                               f"finish, or choose another --out") from None
            try:
                if os.fstat(fd).st_ino == os.stat(self.lockfile).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # the holder removed that file as we locked it: take the new one
            fd = self._open_lock()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield self
        finally:
            self.lockfile.unlink(missing_ok=True)  # before the unlock, so nobody holds a vanished file
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only if empty: a failure before anything was written

    def _open_lock(self) -> int:
        return os.open(self.lockfile, os.O_RDWR | os.O_CREAT, 0o644)

    def checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch-{epoch:04d}"

    def read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{path} does not exist: is {self.path} a finished larq-glt run directory?") from None
        except json.JSONDecodeError as e:
            raise RunError(f"{path} is not valid JSON ({e})") from None

    def last_epoch(self) -> int:
        """Number of completed epochs recorded (0 when none)."""
        if not self.state.exists():
            return 0
        return int(self.read_json(self.state)["completed_epochs"])


def load_model(run_dir_or_file):
    """Load a trained model from a run directory, a ``.keras`` file, or an
    export (its folder or ``model.tflite``: rebuilt by :mod:`larq_glt.recover`)."""
    from larq_glt import encoders, sampled_gradient, shuffle  # noqa: F401  registers the custom layers
    from larq_glt import grouped_conv, recover
    import larq  # noqa: F401  registers larq's layers and quantizers
    import tf_keras as keras

    grouped_conv.install()  # before the model's grouped convolutions are first traced
    path = Path(run_dir_or_file)
    tflite = recover.flatbuffer_path(path) if not (path.is_dir() and RunDir(path).model.exists()) else None
    if tflite is not None:
        try:
            return recover.from_flatbuffer(tflite)
        except recover.RecoverError as e:
            raise RunError(f"cannot rebuild a trained model from {tflite}: {e}") from None
    if path.is_dir():
        path = RunDir(path).model
    if not path.exists():
        raise RunError(f"no trained model at {path}: train one with `python -m larq_glt.train --out {path.parent}`")
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError) as e:
        raise RunError(f"cannot load the model {path}: {e}") from None
