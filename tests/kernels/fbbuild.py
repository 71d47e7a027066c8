"""Builds small TFLite flatbuffers in pure Python (no TensorFlow), for reader tests.

    data = build_model(
        tensors=[TensorSpec("in", [1, 4], "FLOAT32"), TensorSpec("w", [2], "INT32", data=...)],
        operators=[OpSpec("RESHAPE", [0, 1], [2], reshape=[4]), OpSpec("LceQuantize", [2], [3])],
        inputs=[0], outputs=[3])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite
from flatbuffers import flexbuffers

_TYPES = {k: v for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_BUILTINS = {k: v for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


@dataclass
class TensorSpec:
    name: str
    shape: list[int]
    type_name: str
    data: np.ndarray | None = None
    scale: list[float] | None = None
    zero_point: list[int] | None = None


@dataclass
class OpSpec:
    opcode: str  # builtin name or custom code
    inputs: list[int]
    outputs: list[int]
    custom_options: dict | None = None
    reshape: list[int] | None = None  # ReshapeOptions.new_shape (builtin options example)
    extra: dict = field(default_factory=dict)


def _int_vector(b: flatbuffers.Builder, start, values, kind="int32") -> int:
    start(b, len(values))
    for v in reversed(values):
        (b.PrependInt32 if kind == "int32" else b.PrependInt64 if kind == "int64" else b.PrependFloat32)(v)
    return b.EndVector()


def _bytes_vector(b: flatbuffers.Builder, data: bytes) -> int:
    return b.CreateByteVector(data)


def build_model(tensors, operators, inputs, outputs, description="test model", version=3) -> bytes:
    b = flatbuffers.Builder(1024)
    # buffers: 0 is the empty sentinel, then one per constant tensor
    buffer_data = [None] + [t.data for t in tensors if t.data is not None]
    buffers = []
    for data in buffer_data:
        vec = _bytes_vector(b, np.ascontiguousarray(data).tobytes()) if data is not None else None
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        buffers.append(tflite.BufferEnd(b))
    # operator codes
    codes: list[str] = []
    for op in operators:
        if op.opcode not in codes:
            codes.append(op.opcode)
    code_offsets = []
    for name in codes:
        custom = b.CreateString(name) if name not in _BUILTINS else None
        tflite.OperatorCodeStart(b)
        code = _BUILTINS.get(name, _BUILTINS["CUSTOM"])
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        if custom is not None:
            tflite.OperatorCodeAddCustomCode(b, custom)
        code_offsets.append(tflite.OperatorCodeEnd(b))
    # tensors
    tensor_offsets = []
    next_buffer = 1
    for t in tensors:
        name = b.CreateString(t.name)
        shape = _int_vector(b, tflite.TensorStartShapeVector, t.shape)
        quant = None
        if t.scale is not None:
            scale = _int_vector(b, tflite.QuantizationParametersStartScaleVector, t.scale, "float32")
            zp = _int_vector(b, tflite.QuantizationParametersStartZeroPointVector, t.zero_point or [0], "int64")
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TYPES[t.type_name])
        tflite.TensorAddName(b, name)
        if t.data is not None:
            tflite.TensorAddBuffer(b, next_buffer)
            next_buffer += 1
        else:
            tflite.TensorAddBuffer(b, 0)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))
    # operators
    op_offsets = []
    for op in operators:
        ins = _int_vector(b, tflite.OperatorStartInputsVector, op.inputs)
        outs = _int_vector(b, tflite.OperatorStartOutputsVector, op.outputs)
        custom = None
        if op.custom_options is not None:
            custom = _bytes_vector(b, bytes(flexbuffers.Dumps(op.custom_options)))
        options = None
        if op.reshape is not None:
            shape = _int_vector(b, tflite.ReshapeOptionsStartNewShapeVector, op.reshape)
            tflite.ReshapeOptionsStart(b)
            tflite.ReshapeOptionsAddNewShape(b, shape)
            options = tflite.ReshapeOptionsEnd(b)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index(op.opcode))
        tflite.OperatorAddInputs(b, ins)
        tflite.OperatorAddOutputs(b, outs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, tflite.BuiltinOptions.ReshapeOptions)
            tflite.OperatorAddBuiltinOptions(b, options)
        if custom is not None:
            tflite.OperatorAddCustomOptions(b, custom)
        op_offsets.append(tflite.OperatorEnd(b))

    def vector_of(start, offsets):
        start(b, len(offsets))
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    sg_tensors = vector_of(tflite.SubGraphStartTensorsVector, tensor_offsets)
    sg_ops = vector_of(tflite.SubGraphStartOperatorsVector, op_offsets)
    sg_in = _int_vector(b, tflite.SubGraphStartInputsVector, inputs)
    sg_out = _int_vector(b, tflite.SubGraphStartOutputsVector, outputs)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, sg_tensors)
    tflite.SubGraphAddOperators(b, sg_ops)
    tflite.SubGraphAddInputs(b, sg_in)
    tflite.SubGraphAddOutputs(b, sg_out)
    subgraph = tflite.SubGraphEnd(b)
    subgraphs = vector_of(tflite.ModelStartSubgraphsVector, [subgraph])
    codes_vec = vector_of(tflite.ModelStartOperatorCodesVector, code_offsets)
    buffers_vec = vector_of(tflite.ModelStartBuffersVector, buffers)
    desc = b.CreateString(description)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, version)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffers_vec)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())
