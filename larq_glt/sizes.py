"""The size figures larq-glt reports, each defined once.

Every command names a figure the way :data:`FIGURES` does, and the README's
"Sizes" table is this table (a test checks both). The figures differ because
they count different things, not because one of them is wrong:

```python
from larq_glt import sizes
print(sizes.label("flatbuffer_weight_bits"), sizes.FIGURES["flatbuffer_weight_bits"].meaning)
```
"""
from __future__ import annotations

import dataclasses

__all__ = ["Figure", "FIGURES", "label"]


@dataclasses.dataclass(frozen=True)
class Figure:
    key: str  # the JSON key (size.json, metrics.json, report.json, build size.json)
    name: str  # how every command's output and the README name it
    meaning: str
    shown_by: str


FIGURES = {f.key: f for f in (
    Figure("weight_bits", "weight bits",
           "the trained Keras model's parameters at deployed precision: 1 bit per binary weight, 2 × 32 bits per "
           "channel of a batch norm folded after a binary conv, 8 bits per GLT/thermometer threshold, 32 bits for "
           "anything else (larq_glt.summary)",
           "train (done line, summary.txt, size.json, --max-model-bits)"),
    Figure("flatbuffer_weight_bits", "flatbuffer weight bits",
           "the constant tensors of the exported .tflite as stored: bit-packed filters at 1 bit per weight plus "
           "the padding of each filter row to 32-bit words, float tensors at 32 bits (larq_glt.report)",
           "export, report"),
    Figure("firmware_weight_bytes", "firmware weight bytes",
           "the constant arrays the generated C runtime keeps in flash: packed filters, folded thresholds and the "
           "stem's lookup tables (deploy/codegen)",
           "build"),
    Figure("flash_bytes", "flash",
           "the whole firmware image in flash (code, firmware weight bytes, data); a default build "
           "(--frame-source builtin) also holds the sample frames compiled in (frame_bytes), a --frame-source "
           "uart build (the benchmarks) does not",
           "build, benchmarks"),
    Figure("frame_bytes", "sample frames",
           "the sample photos compiled into a --frame-source builtin firmware (frames × input frame bytes), part "
           "of flash",
           "build"),
)}


def label(key: str) -> str:
    """The name of figure ``key`` in every command's output."""
    return FIGURES[key].name
