"""The flatbuffer TFLM runs, rewritten from the exported one.

The uint8 input encoder (CAST -> RESHAPE -> SUB -> RESHAPE -> LceQuantize for
GLT) cannot run as TFLM builtins: TFLM's CAST has no UINT8 input, and the float
intermediates would need ~2 MB of arena for a 96x96 frame. :func:`tflm_model`
rewrites the flatbuffer for TFLM with what ``deploy/lower/`` computes for
the generated runtime (so the bits are the same): the encoder and the first
binary conv become one ``GltStem`` op (``glt_stem_opt``: raw frame in, no
encoded frame in RAM), the other bit-packed LceBconv2d ops get the lane tables
of ``glt_bconv2d_opt``'s bit-sliced algorithm as two extra constant inputs. With
``accelerate=False`` the encoder becomes ``GltFrontend`` and the LceBconv2d ops
stay as LCE wrote them (the kernels then compute everything from LCE's options
and tensors in Prepare, see ``kernel_params.h``).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers

from deploy import lower
from deploy.tflm.errors import TflmError
from deploy.tflm.ops import FRONTEND_OP, STEM_OP
from larq_glt.flatbuffer import Model

__all__ = ["tflm_model", "STEM_ARRAYS"]

# Flatbuffer TensorType / BuiltinOperator numbers used when rewriting.
_INT32, _UINT8, _CUSTOM = 2, 3, 32


def _schema():
    """TensorFlow's generated flatbuffer object API (schema_py_generated), loaded
    from its file so that TensorFlow itself is not imported."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise TflmError("rewriting the flatbuffer needs the tensorflow package (its schema_py_generated.py)")
    path = Path(list(spec.submodule_search_locations)[0]) / "lite" / "python" / "schema_py_generated.py"
    return _load_schema(str(path))


@lru_cache(maxsize=1)
def _load_schema(path: str):
    spec = importlib.util.spec_from_file_location("larq_glt_tflite_schema", path)
    if spec is None or not Path(path).is_file():
        raise TflmError(f"{path} is missing: cannot rewrite the flatbuffer")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _aligned_buffer_class(schema):
    class AlignedBuffer(schema.BufferT):
        """A buffer whose data starts on a 16-byte boundary, as the converter writes
        them: kernels read weights as uint32 words (LDRD/LDM need alignment)."""

        def Pack(self, builder):
            data = None
            if self.data is not None and len(self.data):
                raw = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(raw), 16)
                builder.head = builder.head - len(raw)
                builder.Bytes[builder.head:builder.head + len(raw)] = raw
                builder.vectorNumElems = len(raw)
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBuffer


#: GltStem's inputs after the frame: glt_stem_params array fields (deploy/tflm/glt_stem_op.cc kArrayInputs).
STEM_ARRAYS = ("lut", "filter", "multiplier", "bias", "thresholds", "tap_popcount", "lane_filter",
               "lane_thresholds", "lv_offset", "lv_table", "lv_compare")


def _stem_call(model: Model, front, table_max_bytes: int | None = None) -> "lower.KernelCall | None":
    """The generated runtime's fused stem call (front end + the conv reading it), if any."""
    readers = model.consumers(front.outputs[0])
    if len(readers) != 1:
        return None
    try:
        conv = lower.lower_operator(model, readers[0])
        calls = lower.fuse_stem_calls(model, [front, conv], table_max_bytes)
    except lower.UnsupportedOpError:
        return None
    return calls[0] if calls[0].function == "glt_stem_opt" else None


def tflm_model(data: bytes, model: Model, *, accelerate: bool = True,
               stem_table_max_bytes: int | None = None) -> tuple[bytes, list[str]]:
    """The flatbuffer TFLM runs: ``data`` with its uint8 input encoder replaced
    (see the module docstring) and, with ``accelerate``, the build-time tables of
    the generated runtime's fastest kernels, computed by deploy/lower/ exactly
    as for that runtime (flash, not arena):

    - the encoder and the LceBconv2d reading it -> one GltStem op (glt_stem_opt);
      without ``accelerate`` (or when they cannot fuse) the encoder -> GltFrontend;
    - each other bit-packed LceBconv2d gets the lane tables of glt_bconv2d_opt's
      bit-sliced algorithm as constant inputs 5 and 6.

    ``stem_table_max_bytes`` bounds the GltStem level tables as for the generated
    runtime. Returns the bytes (``data`` itself if nothing applies) and notes on what changed."""
    try:
        front = lower.find_frontend(model)  # the generated runtime's encoder fusion
    except lower.UnsupportedOpError as e:
        raise TflmError(f"the uint8 input encoder cannot be fused ({e}); TFLM cannot run it as builtins "
                        "either (its CAST has no UINT8 input)") from None
    stem = _stem_call(model, front, stem_table_max_bytes) if (front is not None and accelerate) else None
    lanes = {}
    if accelerate:
        for op in model.operators:
            if op.opcode == "LceBconv2d" and not (stem and op.index in stem.op_indices):
                try:
                    arrays = lower.lower_operator(model, op).arrays
                except lower.UnsupportedOpError as e:
                    raise TflmError(str(e)) from None
                if "lane_filter" in arrays:
                    lanes[op.index] = (arrays["lane_filter"], arrays["lane_thresholds"])
    if front is None and not lanes:
        return data, []
    schema = _schema()
    m = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    if len(m.subgraphs) != 1:
        raise TflmError(f"the model has {len(m.subgraphs)} subgraphs; only single-subgraph models are supported")
    sg = m.subgraphs[0]

    def constant(values: np.ndarray, name: str, shape=None) -> int:
        """A constant tensor: INT32 words of `shape`, or (shape None) the raw bytes as UINT8."""
        raw = np.ascontiguousarray(values)
        buf = schema.BufferT()
        buf.data = np.frombuffer(raw.astype(raw.dtype.newbyteorder("<")).tobytes(), dtype=np.uint8)
        m.buffers.append(buf)
        t = schema.TensorT()
        t.shape = np.array(shape if shape is not None else [buf.data.size], dtype=np.int32)
        t.type = _INT32 if shape is not None else _UINT8
        t.buffer = len(m.buffers) - 1
        t.name = name.encode()
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def custom_op(name: str, inputs, outputs, options: dict | None = None):
        codes = [c for c, code in enumerate(m.operatorCodes) if code.customCode == name.encode()]
        if not codes:
            code = schema.OperatorCodeT()
            code.builtinCode = code.deprecatedBuiltinCode = _CUSTOM
            code.customCode = name.encode()
            code.version = 1
            m.operatorCodes.append(code)
            codes = [len(m.operatorCodes) - 1]
        op = schema.OperatorT()
        op.opcodeIndex = codes[0]
        op.inputs = np.array(inputs, dtype=np.int32)
        op.outputs = np.array(outputs, dtype=np.int32)
        if options:
            op.customOptions = np.frombuffer(flexbuffers.Dumps(options), dtype=np.uint8)
        return op

    notes = []
    for index, (lane_filter, lane_thresholds) in lanes.items():
        op = sg.operators[index]
        inputs = list(op.inputs) + [-1] * (5 - len(op.inputs))
        op.inputs = np.array(inputs[:5] + [constant(lane_filter, f"glt_lane_filter_{index}", [lane_filter.size]),
                                           constant(lane_thresholds, f"glt_lane_thresholds_{index}",
                                                    [lane_thresholds.size])], dtype=np.int32)
    if lanes:
        extra = sum(f.nbytes + t.nbytes for f, t in lanes.values())
        notes.append(f"lane tables for {len(lanes)} LceBconv2d ops ({extra:,} bytes of flash)")
    if stem is not None:
        skip = set(stem.reference_arrays)   # read by the reference kernel only
        inputs = [stem.inputs[0]] + [constant(stem.arrays[a], f"glt_stem_{a}")
                                     if a in stem.arrays and a not in skip else -1 for a in STEM_ARRAYS]
        options = {k: int(v) for k, v in stem.params.items()}
        options["scratch_bytes"] = int(stem.scratch_bytes)
        new_op = custom_op(STEM_OP, inputs, list(stem.outputs), options)
        replaced = set(stem.op_indices)
        tables = sum(stem.arrays[a].nbytes for a in STEM_ARRAYS if a in stem.arrays and a not in skip)
        notes.insert(0, f"uint8 input encoder + first LceBconv2d ({stem.notes[0]}) -> {STEM_OP} "
                        f"with {tables:,} bytes of tables")
    else:
        lut = np.asarray(front.arrays["lut"], dtype=np.uint32)
        channels, words = front.params["channels"], front.params["words"]
        new_op = custom_op(FRONTEND_OP, [front.inputs[0], constant(lut, "glt_frontend_tables",
                                                                     [channels, 256, words])],
                           [front.outputs[0]])
        replaced = set(front.op_indices)
        notes.insert(0, f"uint8 input encoder ({front.notes[0].removeprefix('fuses ')}) -> {FRONTEND_OP} "
                        f"with {lut.nbytes:,} bytes of tables")
    first = min(replaced)
    # Only the raw frame feeds the replaced ops, so the new op can take the first one's place.
    sg.operators = ([o for i, o in enumerate(sg.operators) if i < first and i not in replaced] + [new_op]
                    + [o for i, o in enumerate(sg.operators) if i > first and i not in replaced])
    _drop_unused_tensors(sg, m)
    m.buffers = _align_buffers(schema, m.buffers)
    builder = flatbuffers.Builder(2 * len(data) + 4096)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), notes


def _align_buffers(schema, buffers):
    cls = _aligned_buffer_class(schema)
    out = []
    for b in buffers:
        a = cls()
        a.data, a.offset, a.size = b.data, b.offset, b.size
        out.append(a)
    return out


def _drop_unused_tensors(sg, m) -> None:
    """Removes the tensors no operator, input or output refers to any more (the
    encoder's intermediates), renumbering every reference."""
    used = set(int(t) for t in sg.inputs) | set(int(t) for t in sg.outputs)
    for op in sg.operators:
        used.update(int(t) for t in op.inputs if t >= 0)
        used.update(int(t) for t in op.outputs if t >= 0)
        if op.intermediates is not None:
            used.update(int(t) for t in op.intermediates if t >= 0)
    order = sorted(used)
    new = {old: i for i, old in enumerate(order)}
    remap = lambda ids: np.array([new[int(t)] if t >= 0 else -1 for t in ids], dtype=np.int32)  # noqa: E731
    sg.tensors = [sg.tensors[i] for i in order]
    sg.inputs, sg.outputs = remap(sg.inputs), remap(sg.outputs)
    for op in sg.operators:
        op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
        if op.intermediates is not None:
            op.intermediates = remap(op.intermediates)
    for sig in m.signatureDefs or []:
        for t in list(sig.inputs or []) + list(sig.outputs or []):
            if t.tensorIndex in new:
                t.tensorIndex = new[t.tensorIndex]
