"""Plots of what an encoder learned: the thermometer transfer curve.

The transfer curve of a thermometer code is its *code value* (how many of the
K planes are +1) as a function of the pixel value: a staircase. For the uniform
thermometer the steps are evenly spaced; GLT moves them, i.e. it learns a
global tone mapping of the sensor's response.

```python
from larq_glt import plots
plots.transfer_curve(model.get_layer("encoder"), "transfer_curve.png")
```
"""
from __future__ import annotations

import io

import numpy as np

__all__ = ["code_values", "transfer_curve", "render_png"]

_CHANNEL_COLOURS = ("tab:red", "tab:green", "tab:blue", "tab:gray")


def code_values(thresholds: np.ndarray) -> np.ndarray:
    """(C, K) integer thresholds → (C, 256) number of planes on per pixel value."""
    x = np.arange(256)[None, :, None]
    return (x >= np.asarray(thresholds)[:, None, :]).sum(-1)


def render_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def transfer_curve(encoder, path=None, title: str | None = None) -> bytes:
    """Draw the encoder's code value vs pixel value against the uniform
    thermometer with the same number of levels. Returns PNG bytes, and writes
    them atomically to ``path`` when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from larq_glt import atomic
    from larq_glt.encoders import uniform_thresholds

    t = encoder.thresholds()
    k = t.shape[1]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    xs = np.arange(256)
    uniform = code_values(uniform_thresholds(k)[None])[0]
    ax.step(xs, uniform, where="post", color="black", linestyle="--", label=f"uniform thermometer (K={k})")
    names = ["R", "G", "B"] if t.shape[0] == 3 else [f"ch{c}" for c in range(t.shape[0])]
    for c, codes in enumerate(code_values(t)):
        ax.step(xs, codes, where="post", color=_CHANNEL_COLOURS[c % len(_CHANNEL_COLOURS)], label=f"{type(encoder).__name__} {names[c]}")
    ax.set_xlabel("pixel value (ADC code)")
    ax.set_ylabel("code value (planes on)")
    ax.set_xlim(0, 255)
    ax.set_ylim(-0.2, k + 0.2)
    ax.set_title(title or "Learned thermometer transfer curve")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    png = render_png(fig)
    plt.close(fig)
    if path is not None:
        atomic.write_bytes(path, png)
    return png
