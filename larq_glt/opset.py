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
```

These sets are the contract: ``deploy.lower`` has one lowering per name of
:data:`RUNTIME_OPS` and one numpy evaluator per name of :data:`ENCODER_OPS`
(``tests/test_opset.py`` holds them equal).
"""
from __future__ import annotations

__all__ = ["RUNTIME_OPS", "ENCODER_OPS", "layer_of", "encoder_ops", "unsupported_ops"]

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


def unsupported_ops(model) -> list:
    """The ops outside the op set: neither a runtime op nor an encoder op inside
    the uint8 input encoder. (The firmware's lowering checks each op's
    parameters as well: ``deploy.lower.lower_model``.)"""
    encoder = encoder_ops(model)
    return [op for op in model.operators
            if op.opcode not in RUNTIME_OPS and not (op.opcode in ENCODER_OPS and op.index in encoder)]
