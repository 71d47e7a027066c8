"""Model report of a converted flatbuffer: ops, binary or not, size and cost.

``python -m larq_glt.report model.tflite [--json]``

For every op: its count and whether it computes on binary data; weight bits
(the constant tensors as stored: bit-packed filters at 1 bit per weight plus
their padding bits, floats at 32); MACs (binary XNOR-popcount and other);
flatbuffer bytes; the size of every activation tensor; and whether this
project's firmware runtime can execute each op.

```python
from larq_glt import report
rep = report.model_report(report.read_flatbuffer(open("model.tflite", "rb").read()))
print(report.format_markdown(rep))
```
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

from larq_glt.cli import HelpFormatter  # first: quiets TensorFlow before anything imports it

from larq_glt import sizes
from larq_glt.opset import ENCODER_OPS, RUNTIME_OPS, layer_of, parameter_problems, unsupported_ops

__all__ = ["ReportError", "read_flatbuffer", "model_report", "format_markdown", "check_deployable", "layer_of"]

BINARY_OPS = {"LceBconv2d", "LceBMaxPool2d"}
CONV_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "LceBconv2d"}
# Constant inputs that are shapes or axes, not weights.
_SHAPE_INPUTS = {"RESHAPE": {1}, "TILE": {1}, "BROADCAST_TO": {1}, "MEAN": {1}, "PAD": {1}, "TRANSPOSE": {1}}


class ReportError(ValueError):
    """A file that is not a readable (LCE) TFLite model, or one the runtime cannot run."""


def read_flatbuffer(data: bytes, source: str = "<bytes>"):
    """Parse flatbuffer bytes; a corrupt or truncated file raises ReportError."""
    from larq_glt.flatbuffer import ModelFormatError, read_model_bytes

    try:
        return read_model_bytes(data, source)
    except ModelFormatError as e:
        raise ReportError(str(e)) from None


def read_file(path):
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such file")
    return read_flatbuffer(path.read_bytes(), str(path))


def check_deployable(model) -> None:
    """Raise ReportError naming the first op (and its Keras layer) the firmware
    cannot run: outside the op set (:mod:`larq_glt.opset`), or with parameters
    the runtime has no kernel for (:func:`larq_glt.opset.parameter_problem`)."""
    bad = unsupported_ops(model)
    if bad:
        op = bad[0]
        hint = " (allowed only inside the uint8 input encoder that ends in LceQuantize)" \
            if op.opcode in ENCODER_OPS else ""
        raise ReportError(
            f"op {op.opcode} (operator {op.index}, from Keras layer '{layer_of(model, op)}') is not "
            f"supported by the larq-glt firmware runtime{hint}; supported: {', '.join(sorted(RUNTIME_OPS))}")
    problems = parameter_problems(model)
    if problems:
        op, why = problems[0]
        raise ReportError(f"op {op.opcode} (operator {op.index}, from Keras layer '{layer_of(model, op)}') is not "
                          f"supported by the larq-glt firmware runtime: {why}")


def _op_cost(model, op) -> tuple[int, int]:
    """(binary MACs, other MACs) of one op."""
    t = model.tensors
    if op.opcode == "LceBconv2d":
        out = t[op.outputs[0]].shape
        filt = t[op.inputs[1]].shape  # [out_c, kh, kw, words]
        cin = int(op.custom_options.get("channels_in", 0))
        groups = max(1, cin // max(1, filt[3] * 32)) if cin else 1
        # channels per group: LCE's channels_in split evenly over the groups
        per_group = cin // groups if cin else filt[3] * 32
        return int(out[1] * out[2] * filt[0] * filt[1] * filt[2] * per_group), 0
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        out = t[op.outputs[0]].shape
        filt = t[op.inputs[1]].shape
        if op.opcode == "CONV_2D":
            return 0, int(np.prod(out[1:]) * filt[1] * filt[2] * filt[3])
        return 0, int(np.prod(out[1:]) * filt[1] * filt[2])
    if op.opcode == "FULLY_CONNECTED":
        w = t[op.inputs[1]].shape
        return 0, int(w[0] * w[1])
    return 0, 0


def _weight_bits(model, op) -> int:
    skip = _SHAPE_INPUTS.get(op.opcode, set())
    bits = 0
    for k, i in enumerate(op.inputs):
        if i < 0 or k in skip:
            continue
        tensor = model.tensors[i]
        if tensor.data is not None and tensor.dtype is not None:
            bits += tensor.size * tensor.dtype.itemsize * 8
    return bits


def model_report(model, flatbuffer_bytes: int | None = None) -> dict:
    counts = collections.Counter(op.opcode for op in model.operators)
    ops, binary_macs, other_macs, weight_bits = [], 0, 0, 0
    unsupported = None
    try:
        check_deployable(model)
    except ReportError as e:
        unsupported = str(e)
    for op in model.operators:
        b, o = _op_cost(model, op)
        w = _weight_bits(model, op)
        binary_macs += b
        other_macs += o
        weight_bits += w
        ops.append({
            "index": op.index, "op": op.opcode, "layer": layer_of(model, op),
            "binary": op.opcode in BINARY_OPS, "binary_macs": b, "other_macs": o, "flatbuffer_weight_bits": w,
            "output_shape": list(model.tensors[op.outputs[0]].shape) if op.outputs else [],
            "output_type": model.tensors[op.outputs[0]].type_name if op.outputs else "",
        })
    consts = {i for op in model.operators for i in op.inputs if i >= 0 and model.tensors[i].data is not None}
    activations = [
        {"tensor": t.index, "name": t.name.split(";")[0], "shape": list(t.shape), "type": t.type_name, "bytes": t.nbytes}
        for t in model.tensors if t.index not in consts and t.data is None
    ]
    convs = [o for o in ops if o["op"] in CONV_OPS]
    return {
        "ops": ops,
        "op_counts": dict(sorted(counts.items())),
        "binary_op_counts": {k: v for k, v in counts.items() if k in BINARY_OPS},
        "conv_layers": len(convs),
        "binary_conv_layers": sum(o["op"] == "LceBconv2d" for o in convs),
        "all_convs_binary": bool(convs) and all(o["op"] == "LceBconv2d" for o in convs),
        "flatbuffer_weight_bits": int(weight_bits),
        "binary_macs": int(binary_macs),
        "other_macs": int(other_macs),
        "flatbuffer_bytes": flatbuffer_bytes,
        "input": {"shape": list(model.tensors[model.inputs[0]].shape), "type": model.tensors[model.inputs[0]].type_name},
        "output": {"shape": list(model.tensors[model.outputs[0]].shape), "type": model.tensors[model.outputs[0]].type_name},
        "activations": activations,
        "largest_activation_bytes": max((a["bytes"] for a in activations), default=0),
        "deployable": unsupported is None,
        "unsupported": unsupported,
    }


def format_markdown(rep: dict, title: str = "Model report") -> str:
    lines = [f"# {title}", ""]
    fb = rep.get("flatbuffer_bytes")
    lines += [
        f"- input: {rep['input']['type']} {rep['input']['shape']}; output: {rep['output']['type']} {rep['output']['shape']}",
        f"- flatbuffer: {fb:,} bytes" if fb else "- flatbuffer: (size unknown)",
        f"- {sizes.label('flatbuffer_weight_bits')}: {rep['flatbuffer_weight_bits']:,} ({rep['flatbuffer_weight_bits'] / 1e6:.3f} Mbit)",
        f"- MACs: {rep['binary_macs']:,} binary, {rep['other_macs']:,} other",
        f"- convolutions: {rep['binary_conv_layers']} of {rep['conv_layers']} are binary (LceBconv2d)"
        + (" — fully binarized" if rep["all_convs_binary"] else ""),
        f"- deployable by the larq-glt runtime: {'yes' if rep['deployable'] else 'NO — ' + str(rep['unsupported'])}",
        "",
    ]
    if "verification" in rep:
        v = rep["verification"]
        lines += [f"Verification on {v['images']} {v['source']} images: class agreement "
                  f"{v['class_agreement']:.1%}, max |logit difference| {v['max_abs_logit_difference']:.3g}.", ""]
    lines += ["## Op counts", "", "| op | count | binary |", "| --- | ---: | --- |"]
    for name, n in rep["op_counts"].items():
        lines.append(f"| {name} | {n} | {'yes' if name in BINARY_OPS else ''} |")
    lines += ["", "## Ops", "", "| # | op | Keras layer | output | flatbuffer weight bits | binary MACs | other MACs |",
              "| ---: | --- | --- | --- | ---: | ---: | ---: |"]
    for o in rep["ops"]:
        lines.append(f"| {o['index']} | {o['op']} | {o['layer']} | {o['output_type']} {o['output_shape']} | "
                     f"{o['flatbuffer_weight_bits']:,} | {o['binary_macs']:,} | {o['other_macs']:,} |")
    lines += ["", "## Activations", "", "| tensor | name | type | shape | bytes |", "| ---: | --- | --- | --- | ---: |"]
    for a in rep["activations"]:
        lines.append(f"| {a['tensor']} | {a['name']} | {a['type']} | {a['shape']} | {a['bytes']:,} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m larq_glt.report", description="Report the ops, size and cost of a .tflite model.",
                                formatter_class=HelpFormatter)
    p.add_argument("model", help="a .tflite flatbuffer (e.g. from python -m larq_glt.export)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of Markdown")
    args = p.parse_args(argv)
    try:
        path = Path(args.model)
        model = read_file(path)
        rep = model_report(model, flatbuffer_bytes=path.stat().st_size)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rep, indent=2) if args.json else format_markdown(rep, title=str(args.model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
