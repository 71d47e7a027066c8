"""Ahead-of-time code generation: a flatbuffer becomes plain C.

The model is turned into plain data first — a schedule (one kernel call per
op, from :mod:`deploy.lowering`), a memory plan (:mod:`deploy.memory_plan`) and
the constant arrays — and the templates in ``firmware_templates/model/`` render
that data into ``model.h`` / ``model.c``. No interpreter runs on the device:
``model_invoke`` is a straight list of kernel calls on a static arena.

```python
from deploy import codegen
from larq_glt import flatbuffer
gen = codegen.generate(flatbuffer.read_model("model.tflite"), class_names=["non_person", "person"])
gen.sources["model.c"]      # C text; gen.arena_bytes, gen.weight_bytes, gen.calls
```

The same sources build on the host (:mod:`deploy.host`) for bit-exact tests
against the LCE interpreter, and for the Cortex-M firmware (:mod:`deploy.harness`).
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np

from deploy import lower
from deploy.codegen import memory_plan
from deploy.templates import RUNTIME_DIR, TEMPLATE_DIR, environment
from larq_glt.flatbuffer import Model

__all__ = ["GeneratedModel", "CodegenError", "generate", "RUNTIME_DIR", "TEMPLATE_DIR"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-+]+$")


class CodegenError(ValueError):
    """A model the code generator cannot turn into firmware (message says why)."""


@dataclasses.dataclass
class GeneratedModel:
    sources: dict  # relative path -> text (model.h, model.c, runtime/*.c|h)
    calls: list  # lower.KernelCall, in execution order
    plan: memory_plan.Plan
    arena_bytes: int  # activations (planned) + kernel scratch
    scratch_bytes: int
    weight_bytes: int  # const arrays (flash)
    input_shape: tuple
    input_bytes: int
    num_classes: int
    class_names: list
    op_names: list  # one per call: "<op> <layer>"

    def cost(self) -> dict:
        return {
            "arena_bytes": self.arena_bytes,
            "scratch_bytes": self.scratch_bytes,
            "weight_bytes": self.weight_bytes,
            "input_bytes": self.input_bytes,
            "binary_macs": int(sum(c.binary_macs for c in self.calls)),
            "ops": [
                {"name": n, "function": c.function, "binary_macs": int(c.binary_macs),
                 "const_bytes": int(sum(a.nbytes for a in c.arrays.values()))}
                for n, c in zip(self.op_names, self.calls)
            ],
        }


def _layer_name(model: Model, call) -> str:
    """The Keras layer(s) a call came from (for comments and profiles)."""
    from larq_glt.report import layer_of

    if call.op_name == "FRONTEND":
        return "encoder"
    return layer_of(model, model.operators[call.op_indices[0]])


# ---- rendering of C literals (numbers only; the templates own the structure) ----

def _c_float(x: float) -> str:
    x = float(np.float32(x))
    if math.isnan(x):
        return "NAN"
    if math.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    return f"{x.hex()}f"  # exact: hexadecimal float literal (C99)


def _c_scalar(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _c_float(v)
    v = int(v)
    if v == -(2**31):
        return "INT32_MIN"
    return f"{v}u" if v > 2**31 - 1 else str(v)


def _c_values(arr: np.ndarray, per_line: int = 8) -> str:
    flat = np.asarray(arr).ravel()
    if flat.dtype == np.float32:
        items = [_c_float(x) for x in flat]
    elif flat.dtype == np.uint32:
        items = [f"0x{int(x):08x}u" for x in flat]
        per_line = 8
    else:
        items = [_c_scalar(x) for x in flat.tolist()]
        per_line = 16
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + line for line in lines)


def _env():
    """The shared environment (deploy.templates) with the filters of the model templates."""
    env = environment()
    env.filters.update(c_scalar=_c_scalar, c_values=_c_values,
                       c_type=lambda a: lower.C_TYPES[np.asarray(a).dtype])
    return env


def _runtime_sources(calls) -> dict:
    """The runtime files the calls need (a kernel's .c files and every header)."""
    files = {}
    for h in sorted(RUNTIME_DIR.glob("*.h")):
        files[f"runtime/{h.name}"] = h.read_text()
    stems = {Path(c.header).stem for c in calls}
    sources = sorted(RUNTIME_DIR.glob("*.c"))
    while True:  # a kernel may call others (glt_stem_opt.c calls glt_bconv2d_opt): add their files
        chosen = [c for c in sources if any(c.stem == s or c.stem.startswith(s + "_") for s in stems)]
        used = {m for c in chosen for m in re.findall(r'#include "(glt_\w+)\.h"', c.read_text())}
        if used <= stems:
            break
        stems |= used
    for c in chosen:
        files[f"runtime/{c.name}"] = c.read_text()
    return files


def generate(model: Model, *, class_names=None, name: str = "model", reference: bool = False,
             stem_table_max_bytes: int | None = None) -> GeneratedModel:
    """Lower, plan and render ``model``. ``reference=True`` calls the readable
    reference kernels instead of the optimized ones (same results);
    ``stem_table_max_bytes`` bounds the flash of the fused stem's level tables
    (None: :data:`deploy.lower.STEM_TABLE_MAX_BYTES`)."""
    if not _NAME.match(name):
        raise CodegenError(f"model name {name!r} must be one token")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise CodegenError(f"the firmware runs models with one input and one output; this one has "
                           f"{len(model.inputs)} inputs and {len(model.outputs)} outputs")
    tin, tout = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    if tin.type_name != "UINT8" or len(tin.shape) != 4 or tin.shape[0] != 1:
        raise CodegenError(f"the model input must be a raw uint8 image [1, H, W, C]; it is "
                           f"{tin.type_name} {list(tin.shape)} (export with larq_glt.export, which keeps the encoder inside)")
    if tout.type_name != "FLOAT32":
        raise CodegenError(f"the model output must be float32 logits; it is {tout.type_name}")
    num_classes = int(tout.size)
    class_names = list(class_names or [f"class{i}" for i in range(num_classes)])
    if len(class_names) != num_classes:
        raise CodegenError(f"{len(class_names)} class names for a model with {num_classes} outputs")

    try:
        calls = lower.lower_model(model, stem_table_max_bytes=stem_table_max_bytes)  # UnsupportedOpError names the op
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, ZeroDivisionError) as e:
        if isinstance(e, lower.UnsupportedOpError):
            raise
        # A damaged model can hold shapes or options that make no sense together.
        raise CodegenError(f"the model's ops are inconsistent (damaged file?): {type(e).__name__}: {e}") from None
    # Activation lifetimes in call order; the input frame is not in the arena.
    producer, last_use = {}, {}
    for i, c in enumerate(calls):
        for t in c.inputs:
            last_use[t] = i
        for t, nbytes in zip(c.outputs, c.output_bytes):
            producer[t] = (i, nbytes)
    buffers = []
    for t, (i, nbytes) in producer.items():
        last = len(calls) if t == model.outputs[0] else last_use.get(t, i)
        buffers.append(memory_plan.Buffer(f"t{t}", int(nbytes), i, max(i, last)))
    plan = memory_plan.plan(buffers)
    if f"t{model.outputs[0]}" not in plan.offsets:
        raise CodegenError("no op writes the model output")
    scratch = max((c.scratch_bytes for c in calls), default=0)
    scratch = (scratch + 15) // 16 * 16
    arena = plan.peak + scratch

    def ptr(t, const):
        # void pointers convert to each kernel's own pointer type without a cast warning
        qual = "const void *" if const else "void *"
        if t == model.inputs[0]:
            return f"({qual})frame"
        return f"({qual})(arena.bytes + {plan.offsets[f't{t}']})"

    op_names = [f"{c.op_name} {_layer_name(model, c)}".strip() for c in calls]

    def rendered_arrays(c):
        # Arrays only the reference twin reads stay out of optimized builds (NULL in the struct).
        if reference:
            return dict(c.arrays)
        return {k: v for k, v in c.arrays.items() if k not in getattr(c, "reference_arrays", ())}

    schedule = [
        {
            "index": i,
            "call": c,
            "name": op_names[i],
            "function": c.reference_function if reference else c.function,
            "input": ptr(c.inputs[0], True) if c.inputs else "NULL",
            "output": ptr(c.outputs[0], False),
            "ops": list(c.op_indices),
            "arrays": rendered_arrays(c),
        }
        for i, c in enumerate(calls)
    ]
    h, w, ch = (int(d) for d in tin.shape[1:])
    ctx = {
        "name": name,
        "source": Path(model.path).name if model.path else "model.tflite",
        "schedule": schedule,
        "headers": sorted({c.header for c in calls}),
        "input": {"h": h, "w": w, "c": ch, "bytes": h * w * ch},
        "num_classes": num_classes,
        "class_names": class_names,
        "activation_bytes": plan.peak,
        "scratch_bytes": scratch,
        "arena_bytes": arena,
        "output_offset": plan.offsets[f"t{model.outputs[0]}"],
        "reference": reference,
    }
    env = _env()
    sources = {
        "model.h": env.get_template("model/model.h.j2").render(ctx),
        "model.c": env.get_template("model/model.c.j2").render(ctx),
    }
    sources.update(_runtime_sources(calls))
    weight_bytes = int(sum(a.nbytes for s in schedule for a in s["arrays"].values()))
    return GeneratedModel(
        sources=sources, calls=calls, plan=plan, arena_bytes=arena, scratch_bytes=scratch,
        weight_bytes=weight_bytes, input_shape=(h, w, ch), input_bytes=h * w * ch,
        num_classes=num_classes, class_names=class_names, op_names=op_names,
    )
