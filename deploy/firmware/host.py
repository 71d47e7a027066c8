"""Build and run the generated model natively on the host (gcc).

The host build is the same generated C as the firmware, compiled for x86 with
``-Wall -Wextra -Werror`` (and optionally AddressSanitizer +
UndefinedBehaviorSanitizer). Tests compare its logits bit for bit with the LCE
interpreter.

```python
from deploy import codegen
from deploy.firmware import host
exe = host.build(codegen.generate(model), "build/host")
classes, logits = host.run(exe, frames)      # frames: uint8 [N, H, W, C]
```
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from deploy.codegen.render import GeneratedModel
from deploy.templates import TEMPLATE_DIR

__all__ = ["HostBuildError", "build", "run", "CFLAGS", "SANITIZE"]

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


class HostBuildError(RuntimeError):
    pass


def build(gen: GeneratedModel, out_dir, *, sanitize: bool = False, cc: str = "gcc", extra_cflags=()) -> Path:
    """Write the sources + host driver into ``out_dir`` and compile ``host_model``."""
    if shutil.which(cc) is None:
        raise HostBuildError(f"{cc} not found: install the Debian package gcc")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for rel, text in gen.sources.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    shutil.copy(TEMPLATE_DIR / "host" / "host_main.c.j2", out / "host_main.c")
    sources = ["host_main.c"] + sorted(r for r in gen.sources if r.endswith(".c"))
    exe = out / "host_model"
    cmd = [cc, *CFLAGS, *(SANITIZE if sanitize else []), *extra_cflags, "-I", str(out),
           *[str(out / s) for s in sources], "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise HostBuildError(f"host build failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return exe


def run(exe, frames: np.ndarray, timeout: float = 120) -> tuple[np.ndarray, np.ndarray]:
    """Run ``frames`` (uint8 [N, H, W, C]) through the host build: (classes, logits float32)."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(frames.tobytes())
        f.flush()
        proc = subprocess.run([str(exe), f.name], capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise HostBuildError(f"{exe} exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    if len(rows) != len(frames):
        raise HostBuildError(f"{exe} printed {len(rows)} results for {len(frames)} frames")
    classes = np.array([int(r[0]) for r in rows])
    bits = np.array([[int(x, 16) for x in r[1:]] for r in rows], dtype=np.uint32)
    return classes, bits.view(np.float32)
