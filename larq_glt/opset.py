"""The op set of a converted model, as the exporter and the firmware both name it.

A converted larq-glt model is a TFLite flatbuffer whose ops are drawn from two
sets: :data:`RUNTIME_OPS`, the ops the generated firmware runtime executes one
kernel call each, and :data:`ENCODER_OPS`, the elementwise and layout builtins
that may form the uint8 input encoder (the ops between the raw image and its
``LceQuantize``, which the firmware turns into one look-up table).
:func:`layer_of` names the Keras layer an op came from, for reports, errors and
the comments of the generated C.

```python
from larq_glt import flatbuffer, opset
model = flatbuffer.read_model("model.tflite")
[(op.opcode, opset.layer_of(model, op)) for op in model.operators]
[op.opcode for op in opset.unsupported_ops(model)]      # [] for a deployable model
[(op.opcode, why) for op, why in opset.parameter_problems(model)]   # [] as well
```

An op of the set can still carry parameters the runtime has no kernel for (a
non-float ARG_MAX, an int8 SOFTMAX, a MEAN over the channels, ...):
:func:`parameter_problem` names them from the op's types, shapes and options.
``deploy.lower`` asks it first for every op, so the exporter and the firmware
build refuse the same ops with the same words; the lowering's own checks
(shapes against its computed geometry) come after.

These sets and :func:`parameter_problem` are the contract: ``deploy.lower`` has one lowering per name of
:data:`RUNTIME_OPS` and one numpy evaluator per name of :data:`ENCODER_OPS`
(``tests/test_opset.py`` holds them equal).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RUNTIME_OPS", "ENCODER_OPS", "layer_of", "encoder_ops", "unsupported_ops", "parameter_problem",
           "parameter_problems", "MAX_TAPS", "Shortcut", "shortcuts", "WordShuffle", "word_shuffles"]

#: Ops with a kernel of the generated runtime (deploy/runtime).
RUNTIME_OPS = frozenset({
    "LceBconv2d", "LceBMaxPool2d", "LceQuantize", "LceDequantize",
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "MEAN", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX", "ARG_MAX",
})

#: Builtins allowed inside the uint8 input encoder (before its LceQuantize).
ENCODER_OPS = frozenset({
    "CAST", "TILE", "SUB", "ADD", "MUL", "DIV", "MAXIMUM", "MINIMUM",
    "GREATER_EQUAL", "GREATER", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL",
    "LOGICAL_NOT", "LOGICAL_AND", "LOGICAL_OR", "SELECT", "SELECT_V2", "FLOOR", "NEG",
    "CONCATENATION", "GATHER", "BROADCAST_TO", "RESHAPE", "EXPAND_DIMS",
})


def _name_layer(tensor_name: str) -> str | None:
    parts = tensor_name.split(";")[0].split("/")
    return parts[1] if len(parts) > 2 else None


def encoder_ops(model) -> set[int]:
    """Indices of the ops of the uint8 input encoder: those whose activation
    inputs all derive from the uint8 model input, up to and including the
    LceQuantize that ends it. Empty when the input is not uint8."""
    if len(model.inputs) != 1 or model.tensors[model.inputs[0]].type_name != "UINT8":
        return set()
    derived = {model.inputs[0]}
    chain: set[int] = set()
    for op in model.operators:
        activations = [i for i in op.inputs if i >= 0 and model.tensors[i].data is None]
        if activations and all(i in derived for i in activations):
            chain.add(op.index)
            if op.opcode != "LceQuantize":
                derived.update(op.outputs)
    return chain


def layer_of(model, op) -> str:
    """The Keras layer an op came from.

    LCE names a bit-packed tensor after the quantizer of the layer that reads
    it, so a binary conv is named by its *input* tensor; a max pool is named
    after the conv it follows; other ops by their output tensor.
    """
    src = model.inputs[0] if model.inputs else None
    if op.opcode == "LceBconv2d":
        return _name_layer(model.tensors[op.inputs[0]].name) or "?"
    if op.opcode in ("LceBMaxPool2d", "MAX_POOL_2D"):
        prev = model.producer(op.inputs[0])
        return f"{layer_of(model, prev)} pool" if prev is not None else "pool"
    if op.opcode == "LceQuantize" and model.producer(op.inputs[0]) is not None and \
            model.producer(op.inputs[0]).opcode in ENCODER_OPS:
        return "encoder"
    if op.opcode in ENCODER_OPS and any(i == src for i in op.inputs):
        return "encoder"
    for t in list(op.outputs) + [i for i in op.inputs if i >= 0]:
        name = _name_layer(model.tensors[t].name)
        if name:
            return name
    return "?"


@dataclass(frozen=True)
class Shortcut:
    """A binary shortcut block as LCE converts it (``models.Block(shortcut=True)``):
    ``LceQuantize(ADD(LceBconv2d(x) -> float, LceDequantize(x)))`` with ``x`` the
    conv's bit-packed input. The runtime runs the four ops as one binary conv
    whose output bit compares the count with one of two thresholds, chosen by the
    input bit of the same pixel and channel (``deploy.lower.lower_shortcut``)."""

    bconv: int  # operator indices
    dequantize: int
    add: int
    quantize: int


def _shortcut_at(model, add) -> Shortcut | None:
    t = model.tensors
    if add.opcode != "ADD" or len(add.inputs) != 2 or len(add.outputs) != 1 or \
            (add.builtin_options or {}).get("fused_activation_function", 0) != 0:
        return None
    producers = [model.producer(i) for i in add.inputs]
    bconv = next((p for p in producers if p is not None and p.opcode == "LceBconv2d"), None)
    deq = next((p for p in producers if p is not None and p.opcode == "LceDequantize"), None)
    if bconv is None or deq is None or t[bconv.outputs[0]].type_name != "FLOAT32" or \
            t[deq.outputs[0]].type_name != "FLOAT32" or deq.inputs[0] != bconv.inputs[0]:
        return None
    readers = model.consumers(add.outputs[0])
    if len(readers) != 1 or readers[0].opcode != "LceQuantize" or add.outputs[0] in model.outputs:
        return None
    # the float tensors are never stored: nothing else may read them
    for op in (bconv, deq):
        if [c.index for c in model.consumers(op.outputs[0])] != [add.index] or op.outputs[0] in model.outputs:
            return None
    # what deploy.lower.lower_shortcut can fuse: a SAME, one-padded, stride-1 conv with
    # as many outputs as inputs, whole 32-channel words per group
    opts = bconv.custom_options or {}
    filt = t[bconv.inputs[1]] if len(bconv.inputs) > 1 and bconv.inputs[1] >= 0 else None
    cin = int(opts.get("channels_in", 0))
    if filt is None or len(filt.shape) != 4 or cin % 32 or filt.shape[0] != cin or filt.shape[3] == 0 or \
            (cin // 32) % filt.shape[3]:
        return None
    if not (t[add.outputs[0]].shape == t[deq.outputs[0]].shape == t[bconv.outputs[0]].shape) or \
            opts.get("padding") != 0 or opts.get("stride_height") != 1 or opts.get("stride_width") != 1 or \
            opts.get("pad_values") != 1:
        return None
    return Shortcut(bconv=bconv.index, dequantize=deq.index, add=add.index, quantize=readers[0].index)


def shortcuts(model) -> list[Shortcut]:
    """The binary shortcut blocks of ``model`` (see :class:`Shortcut`)."""
    return [s for s in (_shortcut_at(model, op) for op in model.operators if op.opcode == "ADD") if s]


@dataclass(frozen=True)
class WordShuffle:
    """A block whose output words are interleaved across its groups
    (``models.Block(shuffle=True)``), as LCE converts it:
    ``LceQuantize(GATHER(MAX_POOL_2D?(LceBconv2d(x) -> float)))``, the gather
    on the channel axis moving whole 32-channel words. The runtime runs the conv
    with bit-packed output (each bit: the float output < 0), the pool as a binary
    max pool, and the gather as a copy of words (``deploy.lower.lower_word_shuffle``);
    the float tensors are never stored."""

    bconv: int  # operator indices
    pool: int | None
    gather: int
    quantize: int
    order: tuple[int, ...]  # source word of each output word


def _word_order(model, gather) -> tuple[int, ...] | None:
    """The gather's source word per output word, if it moves whole words along the last axis."""
    t = model.tensors
    if len(gather.inputs) != 2 or gather.inputs[1] < 0 or t[gather.inputs[1]].data is None:
        return None
    inp = t[gather.inputs[0]]
    axis = int((gather.builtin_options or {}).get("axis", 0))
    if not inp.shape or axis % len(inp.shape) != len(inp.shape) - 1 or \
            int((gather.builtin_options or {}).get("batch_dims", 0)) != 0:
        return None
    index = np.asarray(t[gather.inputs[1]].data).reshape(-1).astype(np.int64)
    channels = inp.shape[-1]
    if channels % 32 or sorted(index.tolist()) != list(range(channels)):
        return None
    words = index.reshape(-1, 32)
    if not np.array_equal(words - words[:, :1], np.broadcast_to(np.arange(32), words.shape)) or \
            np.any(words[:, 0] % 32):
        return None
    return tuple(int(w) for w in words[:, 0] // 32)


def _word_shuffle_at(model, gather) -> WordShuffle | None:
    t = model.tensors
    if gather.opcode != "GATHER" or len(gather.outputs) != 1:
        return None
    order = _word_order(model, gather)
    if order is None:
        return None
    readers = model.consumers(gather.outputs[0])
    if len(readers) != 1 or readers[0].opcode != "LceQuantize" or gather.outputs[0] in model.outputs:
        return None
    pool = model.producer(gather.inputs[0])
    bconv = model.producer(pool.inputs[0]) if pool is not None and pool.opcode == "MAX_POOL_2D" else pool
    if pool is bconv:
        pool = None
    if bconv is None or bconv.opcode != "LceBconv2d" or t[bconv.outputs[0]].type_name != "FLOAT32":
        return None
    if pool is not None:
        o = pool.builtin_options or {}
        if o.get("fused_activation_function", 0) != 0 or t[pool.outputs[0]].type_name != "FLOAT32":
            return None
    # the float tensors are never stored: nothing else may read them
    chain = [bconv] + ([pool] if pool is not None else []) + [gather]
    for op, reader in zip(chain, chain[1:]):
        if [c.index for c in model.consumers(op.outputs[0])] != [reader.index] or op.outputs[0] in model.outputs:
            return None
    if (bconv.custom_options or {}).get("pad_values") != 1 and (bconv.custom_options or {}).get("padding") == 0:
        return None  # zero padding: the bit-output conv of the runtime is one-padded or VALID
    return WordShuffle(bconv=bconv.index, pool=pool.index if pool is not None else None, gather=gather.index,
                       quantize=readers[0].index, order=order)


def word_shuffles(model) -> list[WordShuffle]:
    """The shuffled blocks of ``model`` (see :class:`WordShuffle`)."""
    return [s for s in (_word_shuffle_at(model, op) for op in model.operators if op.opcode == "GATHER") if s]


def unsupported_ops(model) -> list:
    """The ops outside the op set: neither a runtime op, nor an encoder op inside
    the uint8 input encoder, nor the ADD of a binary shortcut (:func:`shortcuts`),
    nor the pool and gather of a shuffled block (:func:`word_shuffles`).
    (The firmware's lowering checks each op's parameters as well:
    ``deploy.lower.lower_model``.)"""
    encoder = encoder_ops(model)
    fused = {s.add for s in shortcuts(model)}
    fused |= {i for s in word_shuffles(model) for i in (s.pool, s.gather) if i is not None}
    return [op for op in model.operators
            if op.opcode not in RUNTIME_OPS and not (op.opcode in ENCODER_OPS and op.index in encoder)
            and op.index not in fused]


#: Filter taps (height x width) the binary convolution kernels handle (GLT_MAX_TAPS, glt_bconv2d_opt.c).
MAX_TAPS = 64
_FLOAT_ONLY = {"MEAN", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX", "ARG_MAX"}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}   # the fused activations with a kernel
_COPIES = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


def parameter_problem(model, op) -> str | None:
    """Why the firmware runtime cannot run this op of :data:`RUNTIME_OPS` with its
    parameters (types, axes, options), or None. Judged from the flatbuffer alone."""
    t = model.tensors
    inp = t[op.inputs[0]] if op.inputs and op.inputs[0] >= 0 else None
    out = t[op.outputs[0]] if op.outputs else None
    name = op.opcode
    if inp is None or out is None:
        return "missing input or output"
    if name in _FLOAT_ONLY and inp.type_name != "FLOAT32":
        return f"input is {inp.type_name}; the runtime's {name} is float only"
    if name == "ARG_MAX":
        axis = t[op.inputs[1]].data if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        if not inp.shape or axis is None or axis.size != 1 or \
                int(axis.reshape(-1)[0]) % len(inp.shape) != len(inp.shape) - 1:
            return "only an argmax over the last axis is supported"
        if out.type_name not in ("INT32", "INT64"):
            return f"output type {out.type_name} is not supported (INT32, INT64)"
    if name == "MEAN":
        axis = t[op.inputs[1]].data if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        axes = sorted(int(a) % 4 for a in axis.reshape(-1)) if axis is not None and len(inp.shape) == 4 else []
        if len(inp.shape) != 4 or inp.shape[0] != 1 or axes != [1, 2]:
            return f"only the spatial mean of [1, H, W, C] is supported (got {list(inp.shape)}, axes {axes})"
    if name in ("AVERAGE_POOL_2D", "FULLY_CONNECTED"):
        act = (op.builtin_options or {}).get("fused_activation_function", 0)
        if act not in _ACTIVATIONS:
            return f"fused activation {act} is not supported ({', '.join(_ACTIVATIONS.values())})"
    if name == "FULLY_CONNECTED":
        w = t[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        if w is None or w.data is None or w.type_name != "FLOAT32" or len(w.shape) != 2:
            return "only constant float [O, I] weights are supported"
    if name == "LceBconv2d":
        opts = op.custom_options or {}
        filt = t[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        if inp.type_name != "INT32":
            return f"input must be bit-packed INT32, got {inp.type_name}"
        if out.type_name not in ("INT32", "FLOAT32", "INT8"):
            return f"output type {out.type_name} is not supported (bit-packed INT32, FLOAT32, INT8)"
        if opts.get("pad_values", 0) not in (0, 1):
            return f"pad_values must be 0 or 1, got {opts['pad_values']!r}"
        if filt is not None and len(filt.shape) == 4 and filt.shape[1] * filt.shape[2] > MAX_TAPS:
            return f"filter {filt.shape[1]}x{filt.shape[2]} has more than {MAX_TAPS} taps"
    if name == "LceBMaxPool2d" and inp.type_name != "INT32":
        return f"input must be bit-packed INT32, got {inp.type_name}"
    if name == "LceQuantize" and inp.type_name not in ("FLOAT32", "INT8", "BOOL"):
        return f"input type {inp.type_name} is not supported (FLOAT32, INT8, BOOL)"
    if name == "LceDequantize" and out.type_name not in ("FLOAT32", "INT8"):
        return f"output type {out.type_name} is not supported (FLOAT32, INT8)"
    if name in _COPIES and (inp.type_name != out.type_name or inp.nbytes != out.nbytes):
        return f"{inp.type_name} {list(inp.shape)} -> {out.type_name} {list(out.shape)} is not a pure reshape"
    return None


def parameter_problems(model) -> list:
    """(op, reason) for each op of :data:`RUNTIME_OPS` outside the uint8 input
    encoder whose parameters the runtime cannot run (:func:`parameter_problem`)."""
    encoder = encoder_ops(model)
    out = []
    for op in model.operators:
        if op.opcode in RUNTIME_OPS and op.index not in encoder:
            why = parameter_problem(model, op)
            if why:
                out.append((op, why))
    return out
