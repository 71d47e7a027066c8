"""Model size and cost at deployed precision: weight bits and MACs per layer.

Binary weights count 1 bit; batch norm after a binary conv is folded by the
LCE converter into one float multiplier and one float bias per channel (2 × 32
bits); GLT/thermometer thresholds are 8-bit ADC codes; anything else counts 32
bits. MACs are split into binary (XNOR-popcount, both operands ±1) and other.

```python
from larq_glt import models, summary
table = summary.model_cost(models.compact())
print(table["total"]["weight_bits"], table["total"]["binary_macs"])
```
"""
from __future__ import annotations

import io
import contextlib

import larq_glt  # noqa: F401
import larq as lq
import numpy as np
import tf_keras as keras

from larq_glt import encoders

__all__ = ["model_cost", "layer_cost", "format_table", "larq_summary_text"]


def _is_binary_quantizer(q) -> bool:
    if q is None:
        return False
    name = q if isinstance(q, str) else getattr(q, "__name__", type(q).__name__)
    return "sign" in str(name).lower()


def layer_cost(layer: keras.layers.Layer) -> dict:
    """Weight bits and MACs of one layer (output shapes must be known)."""
    row = {"layer": layer.name, "type": type(layer).__name__, "weight_bits": 0,
           "binary_weights": 0, "float_params": 0, "binary_macs": 0, "other_macs": 0}
    if isinstance(layer, (keras.layers.Conv2D,)):
        kernel = layer.kernel
        kh, kw, cin_g, cout = kernel.shape
        out_h, out_w = layer.output_shape[1:3]
        n = int(kh * kw * cin_g * cout)
        macs = n * int(out_h) * int(out_w)
        binary_w = _is_binary_quantizer(getattr(layer, "kernel_quantizer", None))
        binary_in = _is_binary_quantizer(getattr(layer, "input_quantizer", None))
        if binary_w:
            row["binary_weights"] = n
            row["weight_bits"] += n
        else:
            row["float_params"] += n
            row["weight_bits"] += 32 * n
        if layer.use_bias:
            row["float_params"] += int(cout)
            row["weight_bits"] += 32 * int(cout)
        if binary_w and binary_in:
            row["binary_macs"] = macs
        else:
            row["other_macs"] = macs
    elif isinstance(layer, keras.layers.BatchNormalization):
        c = int(layer.gamma.shape[0])
        row["float_params"] = 2 * c  # folded: multiplier + bias
        row["weight_bits"] = 64 * c
    elif isinstance(layer, encoders.ThermometerBase):
        t = layer.thresholds()
        row["weight_bits"] = 8 * t.size  # comparator levels are ADC codes
    else:
        n = int(sum(np.prod(w.shape) for w in layer.weights))
        row["float_params"] = n
        row["weight_bits"] = 32 * n
    return row


def model_cost(model: keras.Model) -> dict:
    """Per-layer and total cost; ``{"layers": [...], "total": {...}}``."""
    rows = [layer_cost(l) for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    rows = [r for r in rows if r["weight_bits"] or r["binary_macs"] or r["other_macs"]]
    keys = ("weight_bits", "binary_weights", "float_params", "binary_macs", "other_macs")
    total = {k: int(sum(r[k] for r in rows)) for k in keys}
    total["weight_bytes"] = (total["weight_bits"] + 7) // 8
    return {"layers": rows, "total": total}


def format_table(cost: dict) -> str:
    """Plain-text table of :func:`model_cost` (for run directories and logs)."""
    head = f"{'layer':<16} {'type':<20} {'weight bits':>12} {'binary MACs':>13} {'other MACs':>12}"
    lines = [head, "-" * len(head)]
    for r in cost["layers"]:
        lines.append(f"{r['layer']:<16} {r['type']:<20} {r['weight_bits']:>12,} {r['binary_macs']:>13,} {r['other_macs']:>12,}")
    t = cost["total"]
    lines.append("-" * len(head))
    lines.append(f"{'total':<16} {'':<20} {t['weight_bits']:>12,} {t['binary_macs']:>13,} {t['other_macs']:>12,}")
    lines.append(f"weight bits: {t['weight_bits']:,} ({t['weight_bits'] / 1e6:.3f} Mbit, {t['weight_bytes']:,} bytes)")
    return "\n".join(lines) + "\n"


def larq_summary_text(model: keras.Model) -> str:
    """Larq's own model summary (memory and MAC tables) as text."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        lq.models.summary(model, print_fn=lambda s: print(s))
    return buf.getvalue()
