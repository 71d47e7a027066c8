"""Read an LCE-converted ``.tflite`` flatbuffer into plain Python data.

Only the first subgraph (the model) is read; the others are counted. Constant
tensor data is decoded into read-only numpy arrays, builtin options into dicts
keyed by snake_case field name (e.g. ``stride_h``), and custom options (LCE ops)
from their flexbuffer map.

Any problem with the file - missing, truncated, corrupt, not a TFLite
flatbuffer - raises :class:`ModelFormatError` naming the file and what is wrong.

Example::

    model = read_model("model.tflite")
    for op in model.operators:
        print(op.opcode, op.inputs, op.outputs, op.custom_options)
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tflite
from flatbuffers import flexbuffers

__all__ = ["ModelFormatError", "Model", "Tensor", "Operator", "read_model", "read_model_bytes"]

_IDENTIFIER = b"TFL3"
_CUSTOM_CODE = 32  # BuiltinOperator.CUSTOM

# TensorType enum -> numpy dtype (None: no numpy equivalent we decode).
_DTYPES = {
    0: np.dtype(np.float32),
    1: np.dtype(np.float16),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    5: None,  # STRING
    6: np.dtype(np.bool_),
    7: np.dtype(np.int16),
    8: np.dtype(np.complex64),
    9: np.dtype(np.int8),
    10: np.dtype(np.float64),
    11: np.dtype(np.complex128),
    12: np.dtype(np.uint64),
    15: np.dtype(np.uint32),
    16: np.dtype(np.uint16),
}
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_BUILTIN_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_OPTION_CLASSES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_OPTION2_CLASSES = (
    {v: k for k, v in vars(tflite.BuiltinOptions2).items() if not k.startswith("_")}
    if hasattr(tflite, "BuiltinOptions2")
    else {}
)

# Errors the flatbuffers/flexbuffers/numpy decoders raise on malformed input.
_DECODE_ERRORS = (
    struct.error,
    IndexError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    OverflowError,
    UnicodeDecodeError,
    RecursionError,
)


class ModelFormatError(Exception):
    """The file is not a readable TFLite flatbuffer (message names file and problem)."""


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype | None  # None for types without a numpy equivalent (e.g. STRING)
    type_name: str  # TFLite TensorType name, e.g. "FLOAT32"
    data: np.ndarray | None  # constant data (read-only), None for activations
    scale: np.ndarray | None = None  # quantization scales (float32), None if absent
    zero_point: np.ndarray | None = None  # quantization zero points (int64), None if absent

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data (0 if the type has no numpy equivalent)."""
        return self.size * self.dtype.itemsize if self.dtype is not None else 0

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class Operator:
    index: int
    opcode: str  # builtin name ("CONV_2D") or custom code ("LceBconv2d")
    builtin: bool
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    builtin_options: dict[str, Any] = field(default_factory=dict)
    custom_options: dict[str, Any] | None = None


@dataclass(frozen=True)
class Model:
    path: str
    version: int
    description: str
    subgraph_count: int
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def producer(self, tensor_index: int) -> Operator | None:
        """The operator writing a tensor, None for model inputs and constants."""
        for op in self.operators:
            if tensor_index in op.outputs:
                return op
        return None

    def consumers(self, tensor_index: int) -> list[Operator]:
        """Operators reading a tensor, in execution order."""
        return [op for op in self.operators if tensor_index in op.inputs]


def read_model(path: str | os.PathLike) -> Model:
    """Reads a ``.tflite`` file. Raises ModelFormatError on any problem."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{path}: is a directory, not a .tflite file") from None
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read ({e.strerror or e})") from None
    return read_model_bytes(data, source=path)


def read_model_bytes(data: bytes, source: str = "<bytes>") -> Model:
    """Reads a flatbuffer held in memory; ``source`` names it in error messages."""
    data = bytes(data)
    if len(data) < 8:
        raise ModelFormatError(f"{source}: {len(data)} bytes, too short to be a TFLite flatbuffer")
    if data[4:8] != _IDENTIFIER:
        raise ModelFormatError(
            f"{source}: not a TFLite flatbuffer (file identifier {data[4:8]!r}, expected {_IDENTIFIER!r})"
        )
    try:
        return _Reader(data, source).model()
    except ModelFormatError:
        raise
    except _DECODE_ERRORS as e:
        raise ModelFormatError(
            f"{source}: corrupt or truncated TFLite flatbuffer ({type(e).__name__}: {e})"
        ) from None


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data = data
        self.source = source
        root = struct.unpack_from("<I", data, 0)[0]
        self._check_offset(root, "root table")
        self.fb = tflite.Model.GetRootAs(data, 0)

    def fail(self, what: str) -> None:
        raise ModelFormatError(f"{self.source}: {what}")

    def _check_offset(self, offset: int, what: str) -> None:
        if offset >= len(self.data):
            self.fail(f"{what} offset {offset} is beyond the end of the file ({len(self.data)} bytes)")

    def _length(self, n: int, what: str) -> int:
        # Every vector element takes at least one byte: a longer vector is corruption
        # (and would otherwise make us loop for a very long time).
        if n < 0 or n > len(self.data):
            self.fail(f"{what} claims {n} entries in a {len(self.data)}-byte file")
        return n

    def _vector(self, value: Any) -> tuple[int, ...]:
        # flatbuffers returns 0 (not an empty array) for an absent vector
        if isinstance(value, np.ndarray):
            return tuple(int(v) for v in value)
        return ()

    def model(self) -> Model:
        fb = self.fb
        n_subgraphs = self._length(fb.SubgraphsLength(), "subgraph list")
        if n_subgraphs < 1:
            self.fail("has no subgraph")
        n_buffers = self._length(fb.BuffersLength(), "buffer list")
        n_codes = self._length(fb.OperatorCodesLength(), "operator code list")
        codes = [self._opcode(fb.OperatorCodes(i)) for i in range(n_codes)]
        sg = fb.Subgraphs(0)
        n_tensors = self._length(sg.TensorsLength(), "tensor list")
        tensors = tuple(self._tensor(sg.Tensors(i), i, n_buffers) for i in range(n_tensors))
        n_ops = self._length(sg.OperatorsLength(), "operator list")
        operators = tuple(self._operator(sg.Operators(i), i, codes, n_tensors) for i in range(n_ops))
        inputs = self._vector(sg.InputsAsNumpy())
        outputs = self._vector(sg.OutputsAsNumpy())
        for t in inputs + outputs:
            if not 0 <= t < n_tensors:
                self.fail(f"model input/output tensor index {t} out of range (0..{n_tensors - 1})")
        description = fb.Description()
        return Model(
            path=self.source,
            version=int(fb.Version()),
            description=description.decode("utf-8") if description else "",
            subgraph_count=n_subgraphs,
            tensors=tensors,
            operators=operators,
            inputs=inputs,
            outputs=outputs,
        )

    def _opcode(self, oc) -> tuple[str, bool]:
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == _CUSTOM_CODE:
            custom = oc.CustomCode()
            if not custom:
                self.fail("custom operator code without a name")
            return custom.decode("utf-8"), False
        name = _BUILTIN_NAMES.get(code)
        if name is None:
            name = f"BUILTIN_{code}"  # newer than the schema we know; lowering rejects it
        return name, True

    def _tensor(self, t, index: int, n_buffers: int) -> Tensor:
        name = (t.Name() or b"").decode("utf-8")
        shape = self._vector(t.ShapeAsNumpy())
        if any(d < 0 for d in shape):
            sig = self._vector(t.ShapeSignatureAsNumpy())
            self.fail(f"tensor {index} ({name!r}) has a dynamic shape {sig or shape}")
        type_code = int(t.Type())
        dtype = _DTYPES.get(type_code)
        type_name = _TYPE_NAMES.get(type_code, f"TYPE_{type_code}")
        buf_index = int(t.Buffer())
        if not 0 <= buf_index < max(n_buffers, 1):
            self.fail(f"tensor {index} ({name!r}) refers to buffer {buf_index}, only {n_buffers} exist")
        data = self._buffer_data(buf_index, n_buffers) if n_buffers else None
        if data is not None and dtype is not None:
            expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
            if len(data) != expected:
                self.fail(
                    f"tensor {index} ({name!r}) has {len(data)} data bytes, "
                    f"its shape {list(shape)} of {type_name} needs {expected}"
                )
            array = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
            array.setflags(write=False)
        else:
            array = None
        scale = zero_point = None
        q = t.Quantization()
        if q is not None:
            s = q.ScaleAsNumpy()
            z = q.ZeroPointAsNumpy()
            if isinstance(s, np.ndarray) and s.size:
                scale = s.astype(np.float32)
                scale.setflags(write=False)
            if isinstance(z, np.ndarray) and z.size:
                zero_point = z.astype(np.int64)
                zero_point.setflags(write=False)
        return Tensor(index, name, shape, dtype, type_name, array, scale, zero_point)

    def _buffer_data(self, buf_index: int, n_buffers: int) -> bytes | None:
        buf = self.fb.Buffers(buf_index)
        offset, size = int(buf.Offset()), int(buf.Size())
        if offset > 1:  # large models keep buffers after the flatbuffer
            if offset + size > len(self.data):
                self.fail(f"buffer {buf_index} ({size} bytes at {offset}) is beyond the end of the file")
            return self.data[offset : offset + size]
        raw = buf.DataAsNumpy()
        if not isinstance(raw, np.ndarray) or raw.size == 0:
            return None
        return raw.tobytes()

    def _operator(self, op, index: int, codes: list[tuple[str, bool]], n_tensors: int) -> Operator:
        code_index = int(op.OpcodeIndex())
        if not 0 <= code_index < len(codes):
            self.fail(f"operator {index} uses opcode {code_index}, only {len(codes)} exist")
        name, builtin = codes[code_index]
        inputs = self._vector(op.InputsAsNumpy())
        outputs = self._vector(op.OutputsAsNumpy())
        for t in inputs:
            if not -1 <= t < n_tensors:
                self.fail(f"operator {index} ({name}) reads tensor {t}, only {n_tensors} exist")
        for t in outputs:
            if not 0 <= t < n_tensors:
                self.fail(f"operator {index} ({name}) writes tensor {t}, only {n_tensors} exist")
        custom = None
        if op.CustomOptionsLength():
            raw = op.CustomOptionsAsNumpy()
            try:
                custom = flexbuffers.Loads(raw.tobytes())
            except _DECODE_ERRORS as e:
                self.fail(f"operator {index} ({name}) has unreadable custom options ({type(e).__name__}: {e})")
            if not isinstance(custom, dict):
                self.fail(f"operator {index} ({name}) custom options are not a map")
        builtin_options = self._builtin_options(op, index, name)
        return Operator(index, name, builtin, inputs, outputs, builtin_options, custom)

    def _builtin_options(self, op, index: int, name: str) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for type_getter, table_getter, classes in (
            ("BuiltinOptionsType", "BuiltinOptions", _OPTION_CLASSES),
            ("BuiltinOptions2Type", "BuiltinOptions2", _OPTION2_CLASSES),
        ):
            if not hasattr(op, type_getter):
                continue
            kind = int(getattr(op, type_getter)())
            if kind == 0:
                continue
            cls_name = classes.get(kind)
            cls = getattr(tflite, cls_name, None) if cls_name else None
            table = getattr(op, table_getter)()
            if cls is None or table is None:
                continue  # options of a type this schema does not describe
            obj = cls()
            obj.Init(table.Bytes, table.Pos)
            options.update(_table_to_dict(obj))
        return options


_SKIP_METHODS = re.compile(r"^(Init|GetRootAs.*|.*BufferHasIdentifier|.*AsNumpy|.*Length|.*IsNone)$")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _table_to_dict(obj) -> dict[str, Any]:
    """Scalar and vector fields of a generated options table, by snake_case name."""
    out: dict[str, Any] = {}
    for attr in dir(type(obj)):
        if attr.startswith("_") or _SKIP_METHODS.match(attr):
            continue
        if hasattr(obj, attr + "AsNumpy"):
            value = getattr(obj, attr + "AsNumpy")()
            out[_snake(attr)] = [v.item() for v in value] if isinstance(value, np.ndarray) else []
            continue
        try:
            value = getattr(obj, attr)()
        except TypeError:
            continue  # needs arguments (vector element accessor without AsNumpy)
        if isinstance(value, (bool, int, float)):
            out[_snake(attr)] = value
        elif isinstance(value, bytes):
            out[_snake(attr)] = value.decode("utf-8", errors="replace")
    return out
