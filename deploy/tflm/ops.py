"""The ops larq-glt's TFLM kernels provide (deploy/tflm/*.cc): their names and
registration functions, the custom options they read, the resolver a model
needs, and the arena it needs under TFLM's planner."""
from __future__ import annotations

import re
from pathlib import Path

from deploy.codegen import memory_plan
from deploy.tflm.errors import TflmError
from deploy.tflm.library import resolver_methods
from larq_glt.flatbuffer import Model

__all__ = ["CUSTOM_OPS", "OPTION_KEYS", "FRONTEND_OP", "STEM_OP", "lce_options", "resolver_method",
           "resolver_ops", "estimate_arena"]

#: Custom ops larq-glt registers (deploy/tflm/larq_glt_tflm.h), by name -> registration function.
CUSTOM_OPS = {
    "LceQuantize": "Register_LceQuantize",
    "LceDequantize": "Register_LceDequantize",
    "LceBconv2d": "Register_LceBconv2d",
    "LceBMaxPool2d": "Register_LceBMaxPool2d",
    "GltFrontend": "Register_GltFrontend",
    "GltStem": "Register_GltStem",
}
#: Integer custom options each LCE op's TFLM kernel reads (as the LCE kernels do).
OPTION_KEYS = {
    "LceBconv2d": ("channels_in", "stride_height", "stride_width", "dilation_height_factor",
                   "dilation_width_factor", "padding", "pad_values", "fused_activation_function"),
    "LceBMaxPool2d": ("filter_height", "filter_width", "stride_height", "stride_width", "padding"),
    "LceQuantize": (),
    "LceDequantize": (),
    "GltFrontend": (),
    "GltStem": (),   # glt_stem_params fields, written by tflm_model (see deploy/tflm/glt_stem_op.cc)
}
FRONTEND_OP = "GltFrontend"
STEM_OP = "GltStem"
_ARENA_OVERHEAD = 4096          # interpreter, allocator and per-tensor/op bookkeeping
_PER_TENSOR, _PER_OP = 48, 160  # TfLiteEvalTensor + planner data; node + registration + op data


def lce_options(model: Model) -> list[dict]:
    """For each custom op: its name and the integer options its TFLM kernel reads
    (what LCE wrote in the custom-options flexbuffer). A missing key raises
    TflmError, as the kernel would refuse the op in Prepare."""
    out = []
    for op in model.operators:
        if op.opcode not in CUSTOM_OPS:
            continue
        opts = op.custom_options or {}
        missing = [k for k in OPTION_KEYS[op.opcode] if k not in opts]
        if missing:
            raise TflmError(f"operator {op.index} ({op.opcode}): custom option {missing[0]!r} missing")
        out.append({"index": op.index, "op": op.opcode, "options": {k: int(opts[k]) for k in OPTION_KEYS[op.opcode]}})
    return out


def resolver_method(builtin: str) -> str:
    """MicroMutableOpResolver method for a builtin: FULLY_CONNECTED -> AddFullyConnected, CONV_2D -> AddConv2D."""
    return "Add" + "".join(p if re.fullmatch(r"\d+D", p) else p.capitalize() for p in builtin.split("_"))


def resolver_ops(model: Model, tree: Path | None = None) -> list[dict]:
    """The resolver entries the model needs, in first-use order: builtins as
    ``{"kind": "builtin", "name": "RESHAPE", "method": "AddReshape"}``, custom ops as
    ``{"kind": "custom", "name": "LceBconv2d", "register": "Register_LceBconv2d"}``.
    With ``tree``, builtins the TFLM tree lacks raise TflmError."""
    methods = resolver_methods(tree)
    ops, seen = [], set()
    for op in model.operators:
        if op.opcode in seen:
            continue
        seen.add(op.opcode)
        if op.opcode in CUSTOM_OPS:
            ops.append({"kind": "custom", "name": op.opcode, "register": CUSTOM_OPS[op.opcode]})
        elif op.opcode.isupper() and op.opcode != "CUSTOM":
            method = resolver_method(op.opcode)
            if methods is not None and method not in methods:
                raise TflmError(f"operator {op.index} ({op.opcode}): TFLM at {tree} has no builtin kernel for it "
                                f"(no MicroMutableOpResolver::{method})")
            ops.append({"kind": "builtin", "name": op.opcode, "method": method})
        else:
            raise TflmError(f"operator {op.index}: custom op {op.opcode!r} has no TFLM kernel in larq-glt "
                            f"(it provides {', '.join(CUSTOM_OPS)})")
    return ops


def estimate_arena(model: Model) -> int:
    """Arena bytes for TFLM: activations planned the way TFLM's greedy planner does,
    plus kernel scratch, the persistent data of larq-glt's kernels and TFLM's own
    bookkeeping, with a margin. The real use is printed at start-up."""
    n = len(model.operators)
    produced = {t: i for i, op in enumerate(model.operators) for t in op.outputs}
    last_use: dict[int, int] = {}
    for i, op in enumerate(model.operators):
        for t in op.inputs:
            if t >= 0:
                last_use[t] = i
    buffers = []
    for t in model.tensors:
        if t.data is not None:
            continue
        first = 0 if t.index in model.inputs else produced.get(t.index)
        if first is None:
            continue
        last = n if t.index in model.outputs else last_use.get(t.index, first)
        buffers.append(memory_plan.Buffer(f"t{t.index}", t.nbytes, first, max(first, last)))
    peak = memory_plan.plan(buffers).peak
    scratch, persistent = 0, 0
    for op in model.operators:
        if op.opcode == STEM_OP:
            scratch = max(scratch, int((op.custom_options or {}).get("scratch_bytes", 0)))
        if op.opcode == "LceBconv2d":
            filt = model.tensors[op.inputs[1]]
            out_c, fh, fw, gw = filt.shape
            n = fh * fw * gw
            groups = -(-int((op.custom_options or {}).get("channels_in", 32 * gw)) // 32) // gw or 1
            lane_groups = -(-(out_c // groups) // 32) if len(op.inputs) > 6 and op.inputs[5] >= 0 else 0
            # as lce_bconv2d.cc asks: window + sentinel, and the lanes' column list from two groups on
            scratch = max(scratch, 4 * (n + 1) + (2 * (16 * n + 16) if lane_groups > 1 else 0))
            bits = model.tensors[op.outputs[0]].type_name == "INT32"
            persistent += out_c * (4 if bits else 8)   # clamped thresholds, or fused multiplier + bias
            opts = op.custom_options or {}
            if opts.get("padding") == 0 and opts.get("pad_values") == 0:
                persistent += 2 * out_c * fh * fw     # per-tap filter popcounts for zero padding
    bookkeeping = _ARENA_OVERHEAD + _PER_TENSOR * len(model.tensors) + _PER_OP * n
    total = peak + scratch + persistent + bookkeeping
    return (total + total // 8 + 15) // 16 * 16   # the bookkeeping terms above are already generous

