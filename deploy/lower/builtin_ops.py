"""Lowering of the TFLite builtins a converted model ends with (reshapes,
mean, average pool, fully connected, softmax, argmax): float reference kernels.
"""
from __future__ import annotations

import numpy as np

from deploy.lower.calls import (KernelCall, activation_range, const_input, fail, hwc, input_tensor, kernel_call, optional_const, output_tensor, rows_cols, same_valid)
from larq_glt.flatbuffer import Model, Operator

def lower_copy(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    if inp.nbytes != out.nbytes or inp.dtype != out.dtype:
        fail(op, f"{inp.type_name} {list(inp.shape)} -> {out.type_name} {list(out.shape)} is not a pure reshape")
    return kernel_call(op, model, "glt_copy", "glt_copy.h", function="glt_copy_ref",
                 params=dict(bytes=inp.nbytes), arrays={}, inputs=[inp.index], outputs=[out.index],
                 notes=["no data movement: the planner may alias input and output"])


def lower_mean(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    axes = sorted(int(a) % 4 for a in np.asarray(const_input(model, op, 1, "axis")).reshape(-1)) if len(inp.shape) == 4 else []
    if inp.type_name != "FLOAT32" or len(inp.shape) != 4 or inp.shape[0] != 1 or axes != [1, 2]:
        fail(op, f"only float spatial mean of [1, H, W, C] is supported (got {inp.type_name} {list(inp.shape)}, axes {axes})")
    _, h, w, c = inp.shape
    return kernel_call(op, model, "glt_mean", "glt_mean.h", function="glt_mean_ref",
                 params=dict(pixels=h * w, channels=c), arrays={},
                 inputs=[inp.index], outputs=[out.index])


def lower_avgpool(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    if inp.type_name != "FLOAT32":
        fail(op, f"only float input is supported, got {inp.type_name}")
    in_h, in_w, c = hwc(op, inp, "input")
    o = op.builtin_options
    fh, fw, sh, sw = o["filter_height"], o["filter_width"], o["stride_h"], o["stride_w"]
    out_h, pad_top = same_valid(op, o["padding"], in_h, fh, sh, 1)
    out_w, pad_left = same_valid(op, o["padding"], in_w, fw, sw, 1)
    if hwc(op, out, "output") != (out_h, out_w, c):
        fail(op, f"output shape {list(out.shape)} differs from the computed [1, {out_h}, {out_w}, {c}]")
    lo, hi = activation_range(op, o.get("fused_activation_function", 0))
    params = dict(in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w, filter_h=fh, filter_w=fw,
                  stride_h=sh, stride_w=sw, pad_top=pad_top, pad_left=pad_left, act_min=lo, act_max=hi)
    return kernel_call(op, model, "glt_avgpool", "glt_avgpool.h", function="glt_avgpool_ref",
                 params=params, arrays={}, inputs=[inp.index], outputs=[out.index])


def lower_fully_connected(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    weights = const_input(model, op, 1, "weights")
    if inp.type_name != "FLOAT32" or weights.dtype != np.float32 or weights.ndim != 2:
        fail(op, f"only float input and float [O, I] weights are supported ({inp.type_name}, {weights.dtype})")
    n_out, n_in = weights.shape
    if inp.size % n_in:
        fail(op, f"input of {inp.size} values is not a multiple of {n_in} features")
    bias = optional_const(model, op, 2)
    lo, hi = activation_range(op, op.builtin_options.get("fused_activation_function", 0))
    arrays = {"weights": np.ascontiguousarray(weights).reshape(-1).copy()}
    if bias is not None:
        arrays["bias"] = bias.astype(np.float32).reshape(-1).copy()
    notes = []
    if not np.all(np.abs(weights) == 1.0):
        notes.append("float weights: sums may differ from TFLite's GEMM in the last bits")
    return kernel_call(op, model, "glt_fully_connected", "glt_fully_connected.h",
                 function="glt_fully_connected_ref",
                 params=dict(batches=inp.size // n_in, in_features=n_in, out_features=n_out,
                             act_min=lo, act_max=hi),
                 arrays=arrays, inputs=[inp.index], outputs=[out.index], notes=notes)


def lower_softmax(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    if inp.type_name != "FLOAT32":
        fail(op, f"only float softmax is supported, got {inp.type_name}")
    rows, cols = rows_cols(inp)
    return kernel_call(op, model, "glt_softmax", "glt_softmax.h", function="glt_softmax_ref",
                 params=dict(rows=rows, cols=cols, beta=float(op.builtin_options.get("beta", 1.0))),
                 arrays={}, inputs=[inp.index], outputs=[out.index],
                 notes=["exp without libm: last-bit differences from TFLite are possible"])


def lower_argmax(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    axis = int(np.asarray(const_input(model, op, 1, "axis")).reshape(-1)[0])
    if inp.type_name != "FLOAT32" or axis % len(inp.shape) != len(inp.shape) - 1:
        fail(op, f"only float argmax over the last axis is supported ({inp.type_name}, axis {axis})")
    if out.type_name not in ("INT32", "INT64"):
        fail(op, f"output type {out.type_name} is not supported")
    rows, cols = rows_cols(inp)
    return kernel_call(op, model, "glt_argmax", "glt_argmax.h", function="glt_argmax_ref",
                 params=dict(rows=rows, cols=cols, output_int64=int(out.type_name == "INT64")),
                 arrays={}, inputs=[inp.index], outputs=[out.index])
