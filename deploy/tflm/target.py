"""TensorFlow Lite Micro target: the model as a TFLM flatbuffer + op resolver,
in the same board harness as the generated runtime (``--runtime tflm``).

```python
from deploy.tflm import target as tflm
result = tflm.build("mps2-an500", model="export/model.tflite", out="build/tflm",
                    tflm_dir="/path/to/tflite-micro")      # its library built first
print(tflm.format_size_report(result))
```

larq-glt contains no TFLM code: the build compiles larq-glt's TFLM kernels
(``deploy/tflm/*.cc``: LceQuantize, LceDequantize, LceBconv2d, LceBMaxPool2d
and GltFrontend, each calling the C kernel cores of ``deploy/runtime``) and a
generated model wrapper (``firmware_templates/tflm/``) against the user's TFLM
tree and its prebuilt ``libtensorflow-microlite.a``.

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
and tensors in Prepare). The rewritten flatbuffer is saved as
``model_tflm.tflite`` next to the firmware.

The wrapper implements ``model.h`` (``model_init`` / ``model_invoke``), so the
harness's ``main.c``, its UART ``result:`` lines and its instruction counting
are the generated runtime's. The boot line's ``arena`` is TFLM's real
``arena_used_bytes()``.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers

from deploy.firmware import image as firmware
from deploy.firmware import harness
from deploy import lower
from deploy.codegen import memory_plan
from deploy.boards import Board, load_board
from deploy.templates import ROOT, RUNTIME_DIR, render
from larq_glt import atomic
from larq_glt.flatbuffer import Model, ModelFormatError, read_model_bytes

__all__ = ["TflmError", "TflmLibrary", "TflmBuildResult", "build", "find_library", "tflm_model",
           "resolver_ops", "lce_options", "estimate_arena", "format_size_report", "CUSTOM_OPS",
           "library_instructions"]

KERNEL_DIR = Path(__file__).resolve().parent  # the C++ kernels beside this module

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
# TFLM's library directory names: gen/cortex_m_generic_<TARGET_ARCH>_<BUILD_TYPE>[_<kernels>]_gcc/lib
BUILD_TYPES = ("release_with_logs", "release", "default")
LIBRARY = "libtensorflow-microlite.a"
# What the user's tree must contain (relative paths), and what each tells.
_TREE_MARKER = "tensorflow/lite/micro/micro_interpreter.h"
_DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
_RESOLVER_HEADER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"
# Flatbuffer TensorType / BuiltinOperator numbers used when rewriting.
_INT32, _UINT8, _CUSTOM = 2, 3, 32
_ARENA_OVERHEAD = 4096          # interpreter, allocator and per-tensor/op bookkeeping
_PER_TENSOR, _PER_OP = 48, 160  # TfLiteEvalTensor + planner data; node + registration + op data


class TflmError(firmware.FirmwareError):
    """A TFLM build that cannot be done (message says why and what to do); a
    FirmwareError, so deploy/build.py reports it as one."""


# --------------------------------------------------------------------------- the TFLM tree


@dataclasses.dataclass(frozen=True)
class TflmLibrary:
    tree: Path            # the TFLM checkout
    library: Path         # its libtensorflow-microlite.a for the board
    target_arch: str      # TFLM's TARGET_ARCH, e.g. cortex-m7+fp
    build_type: str       # TFLM's BUILD_TYPE
    kernels: str          # OPTIMIZED_KERNEL_DIR ("" for the reference kernels)

    @property
    def include_dirs(self) -> list[Path]:
        d = self.tree / _DOWNLOADS
        return [self.tree, d / "flatbuffers" / "include", d / "gemmlowp", d / "ruy"]

    @property
    def defines(self) -> list[str]:
        """The preprocessor flags TFLM compiled its library with (layouts must agree)."""
        flags = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DTF_LITE_MCU_DEBUG_LOG"]
        if self.build_type in ("release", "release_with_logs"):
            flags.append("-DNDEBUG")
        if self.build_type == "release":
            flags.append("-DTF_LITE_STRIP_ERROR_STRINGS")
        if self.kernels:
            flags.append(f"-D{self.kernels.upper()}")
        return flags


def target_arch(board: Board) -> str:
    """TFLM's TARGET_ARCH matching the board's compiler flags (hard float: ``+fp``)."""
    hard = "-mfloat-abi=hard" in board.cflags
    return f"{board.cpu}+fp" if hard else board.cpu


#: Debian packages TFLM needs beyond gcc-arm-none-eabi: C++ headers (TFLM's own
#: build stops at ``cstdarg: No such file``) and newlib's C++ library (linking
#: the firmware fails with ``cannot find -lstdc++_nano``).
DEBIAN_PACKAGES = ("libstdc++-arm-none-eabi-dev", "libstdc++-arm-none-eabi-newlib")
_MISSING_PACKAGE = (
    (re.compile(r"fatal error: c\w+: No such file"), "libstdc++-arm-none-eabi-dev"),
    (re.compile(r"cannot find -lstdc\+\+(_nano)?"), "libstdc++-arm-none-eabi-newlib"),
)


def missing_package(output: str) -> str | None:
    """The Debian package whose absence a failed build's output shows, if any."""
    for pattern, package in _MISSING_PACKAGE:
        if pattern.search(output):
            return package
    return None


def library_instructions(tflm_dir, board: Board) -> str:
    """How TFLM documents building its library, for this board."""
    return (f"install the Debian packages {' and '.join(DEBIAN_PACKAGES)} (TFLM is C++), then "
            f"build it with TFLM's makefile (tensorflow/lite/micro/cortex_m_generic/README.md):\n"
            f"  cd {tflm_dir}\n"
            f"  make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic "
            f"TARGET_ARCH={target_arch(board)} TARGET_TOOLCHAIN_ROOT=$(dirname $(which arm-none-eabi-gcc))/ "
            f"BUILD_TYPE=release_with_logs microlite\n"
            f"(it downloads flatbuffers, gemmlowp, ruy, kissfft and CMSIS into {_DOWNLOADS} on the first run; "
            f"OPTIMIZED_KERNEL_DIR=cmsis_nn is optional, larq-glt's ops do not use it)")


def find_library(tflm_dir, board: "str | Board", build_type: str | None = None) -> TflmLibrary:
    """The user's TFLM tree and its built library for ``board`` (of ``build_type``
    if given, else preferring release_with_logs, release, default); TflmError
    saying what is missing and how to build it otherwise."""
    board = load_board(board)
    if tflm_dir is None:
        raise TflmError("--runtime tflm needs --tflm-dir: a TensorFlow Lite Micro checkout "
                        "(git clone https://github.com/tensorflow/tflite-micro) with its library built; "
                        + library_instructions("<tflite-micro>", board))
    tree = Path(tflm_dir).expanduser().resolve()
    if not tree.is_dir():
        raise TflmError(f"--tflm-dir {tflm_dir}: no such directory")
    if not (tree / _TREE_MARKER).is_file():
        raise TflmError(f"--tflm-dir {tree} is not a TensorFlow Lite Micro tree ({_TREE_MARKER} is missing); "
                        "point it at a checkout of github.com/tensorflow/tflite-micro")
    arch = target_arch(board)
    gen = tree / "gen"
    found = sorted(gen.glob(f"cortex_m_generic_*/lib/{LIBRARY}")) if gen.is_dir() else []
    matching = []
    for lib in found:
        m = re.fullmatch(r"cortex_m_generic_(.+?)_(release_with_logs|release|default)(?:_(\w+?))?_gcc",
                         lib.parent.parent.name)
        if m and m[1] == arch and build_type in (None, m[2]):
            matching.append(TflmLibrary(tree, lib, arch, m[2], m[3] or ""))
    if not matching:
        others = ", ".join(str(p.relative_to(tree)) for p in found)
        raise TflmError(f"{tree} has no {LIBRARY} for TARGET_ARCH={arch}"
                        + (f" BUILD_TYPE={build_type}" if build_type else "") + f" ({board.name} compiles with "
                        f"{' '.join(board.cflags)})" + (f"; found only {others}" if others else "")
                        + "; " + library_instructions(tree, board))
    missing = [d for d in matching[0].include_dirs if not d.is_dir()]
    if missing:
        raise TflmError(f"{tree}: TFLM's third-party downloads are missing ({', '.join(map(str, missing))}); "
                        + library_instructions(tree, board))
    # release_with_logs first: error messages on the UART and per-op profiling work.
    matching.sort(key=lambda lib: (BUILD_TYPES.index(lib.build_type), lib.kernels != "", str(lib.library)))
    return matching[0]


# --------------------------------------------------------------------------- the model


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


def _stem_call(model: Model, front) -> "lower.KernelCall | None":
    """The generated runtime's fused stem call (front end + the conv reading it), if any."""
    readers = model.consumers(front.outputs[0])
    if len(readers) != 1:
        return None
    try:
        conv = lower.lower_operator(model, readers[0])
        calls = lower.fuse_stem_calls(model, [front, conv])
    except lower.UnsupportedOpError:
        return None
    return calls[0] if calls[0].function == "glt_stem_opt" else None


def tflm_model(data: bytes, model: Model, *, accelerate: bool = True) -> tuple[bytes, list[str]]:
    """The flatbuffer TFLM runs: ``data`` with its uint8 input encoder replaced
    (see the module docstring) and, with ``accelerate``, the build-time tables of
    the generated runtime's fastest kernels, computed by deploy/lower/ exactly
    as for that runtime (flash, not arena):

    - the encoder and the LceBconv2d reading it -> one GltStem op (glt_stem_opt);
      without ``accelerate`` (or when they cannot fuse) the encoder -> GltFrontend;
    - each other bit-packed LceBconv2d gets the lane tables of glt_bconv2d_opt's
      bit-sliced algorithm as constant inputs 5 and 6.

    Returns the bytes (``data`` itself if nothing applies) and notes on what changed."""
    try:
        front = lower.find_frontend(model)  # the generated runtime's encoder fusion
    except lower.UnsupportedOpError as e:
        raise TflmError(f"the uint8 input encoder cannot be fused ({e}); TFLM cannot run it as builtins "
                        "either (its CAST has no UINT8 input)") from None
    stem = _stem_call(model, front) if (front is not None and accelerate) else None
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


def _tflm_add_methods(tree: Path | None) -> set[str] | None:
    if tree is None or not (tree / _RESOLVER_HEADER).is_file():
        return None
    return set(re.findall(r"TfLiteStatus (Add\w+)\(", (tree / _RESOLVER_HEADER).read_text()))


def _add_method(builtin: str) -> str:
    """MicroMutableOpResolver method for a builtin: FULLY_CONNECTED -> AddFullyConnected, CONV_2D -> AddConv2D."""
    return "Add" + "".join(p if re.fullmatch(r"\d+D", p) else p.capitalize() for p in builtin.split("_"))


def resolver_ops(model: Model, tree: Path | None = None) -> list[dict]:
    """The resolver entries the model needs, in first-use order: builtins as
    ``{"kind": "builtin", "name": "RESHAPE", "method": "AddReshape"}``, custom ops as
    ``{"kind": "custom", "name": "LceBconv2d", "register": "Register_LceBconv2d"}``.
    With ``tree``, builtins the TFLM tree lacks raise TflmError."""
    methods = _tflm_add_methods(tree)
    ops, seen = [], set()
    for op in model.operators:
        if op.opcode in seen:
            continue
        seen.add(op.opcode)
        if op.opcode in CUSTOM_OPS:
            ops.append({"kind": "custom", "name": op.opcode, "register": CUSTOM_OPS[op.opcode]})
        elif op.opcode.isupper() and op.opcode != "CUSTOM":
            method = _add_method(op.opcode)
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
            scratch = max(scratch, 4 * (fh * fw * gw + 1))
            bits = model.tensors[op.outputs[0]].type_name == "INT32"
            persistent += out_c * (4 if bits else 8)   # clamped thresholds, or fused multiplier + bias
            opts = op.custom_options or {}
            if opts.get("padding") == 0 and opts.get("pad_values") == 0:
                persistent += 2 * out_c * fh * fw     # per-tap filter popcounts for zero padding
    bookkeeping = _ARENA_OVERHEAD + _PER_TENSOR * len(model.tensors) + _PER_OP * n
    total = peak + scratch + persistent + bookkeeping
    return (total + total // 8 + 15) // 16 * 16   # the bookkeeping terms above are already generous


# --------------------------------------------------------------------------- the build


@dataclasses.dataclass
class TflmBuildResult:
    board: Board
    out_dir: Path
    elf: Path
    model_path: Path
    library: TflmLibrary | None
    size: dict
    frames: np.ndarray
    frame_labels: list
    frame_names: list
    class_names: list
    resolver: list
    arena_bytes: int
    tflm_model_bytes: int
    notes: list


def _io(model: Model):
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TflmError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                        "the harness needs one uint8 frame in and one float logits vector out")
    inp, out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    if inp.type_name != "UINT8" or len(inp.shape) != 4 or inp.shape[0] != 1:
        raise TflmError(f"model input is {inp.type_name} {list(inp.shape)}, not a UINT8 [1, H, W, C] frame")
    if out.type_name != "FLOAT32":
        raise TflmError(f"model output is {out.type_name}, the harness reads FLOAT32 logits")
    return inp, out


def model_sources(data: bytes, model: Model, *, name: str, class_names, arena_bytes: int,
                  resolver: list, source: str) -> dict:
    """model.h, model_tflm.cc and model_data.cc/.h rendered from firmware_templates/tflm,
    plus larq-glt's TFLM kernels and the C kernel cores they call."""
    inp, out = _io(model)
    num_classes = int(np.prod(out.shape))
    class_names = list(class_names or [f"class{i}" for i in range(num_classes)])
    if len(class_names) != num_classes:
        raise TflmError(f"{len(class_names)} class names for {num_classes} model outputs")
    ctx = {
        "name": name, "source": source, "class_names": class_names, "num_classes": num_classes,
        "input": {"h": inp.shape[1], "w": inp.shape[2], "c": inp.shape[3], "bytes": inp.nbytes},
        # unique per op (the harness's `ops:` line is parsed into a dict): LceBconv2d_1, ...
        "op_names": [f"{op.opcode}_{i}" for i, op in enumerate(model.operators)], "arena_bytes": arena_bytes,
        "resolver": resolver, "model_bytes": len(data),
        "model_data": data,
    }
    sources = {out_name: render(f"tflm/{tpl}", **ctx) for tpl, out_name in (
        ("model.h.j2", "model.h"), ("model_tflm.cc.j2", "model_tflm.cc"),
        ("model_data.h.j2", "model_data.h"), ("model_data.cc.j2", "model_data.cc"))}
    for f in sorted(KERNEL_DIR.glob("*.h")) + sorted(KERNEL_DIR.glob("*.cc")):
        sources[f"tflm/{f.name}"] = f.read_text()
    for f in sorted(RUNTIME_DIR.glob("*.[ch]")):
        sources[f"runtime/{f.name}"] = f.read_text()
    return sources


def build(board, *, model=None, run_dir=None, out=None, tflm_dir=None, opt_level: str = "-O2",
          frame_source: str = "builtin", frames=None, max_frames: int | None = None, profile: bool = False,
          stack_size: int | None = None, arena_bytes: int | None = None, build_type: str | None = None,
          accelerate: bool = True, compile: bool = True) -> TflmBuildResult:
    """Generate and compile the TFLM firmware for ``board`` (see the module docstring).
    ``build_type`` picks the TFLM library build (BUILD_TYPE) when the tree has several;
    ``accelerate=False`` leaves the LceBconv2d ops as LCE wrote them (no stem, no lane tables);
    ``compile=False`` renders the sources without a TFLM tree (for inspection/tests)."""
    board = load_board(board)
    firmware.check_stack_size(board, stack_size)
    out_dir = Path(out or ROOT / "build" / f"{board.name}-tflm")
    try:
        atomic.check_output_dir(out_dir)  # before any work
    except atomic.OutputError as e:
        raise TflmError(f"--out {e}") from None
    library = find_library(tflm_dir, board, build_type) if (compile or tflm_dir is not None) else None
    try:
        model_path = firmware.resolve_model(model, run_dir)
    except firmware.FirmwareError as e:
        raise TflmError(str(e)) from None
    original = model_path.read_bytes()
    try:
        fb = read_model_bytes(original, str(model_path))
    except ModelFormatError as e:
        raise TflmError(str(e)) from None
    lce_options(fb)
    data, notes = tflm_model(original, fb, accelerate=accelerate)
    tfb = read_model_bytes(data, f"{model_path} (rewritten for TFLM)")
    resolver = resolver_ops(tfb, library.tree if library else None)
    inp, _ = _io(tfb)
    arena = arena_bytes or estimate_arena(tfb)
    meta = firmware.model_metadata(model_path)
    name = "".join(ch if ch.isalnum() or ch in "_.-+" else "_" for ch in model_path.parent.name or "model")
    sources = model_sources(data, tfb, name=name or "model", class_names=meta.get("class_names"),
                            arena_bytes=arena, resolver=resolver, source=model_path.name)
    builtin = frame_source == "builtin"
    shape = tuple(inp.shape[1:])
    if frames is None:
        from deploy.firmware import samples

        frames, labels, names = samples.load(shape)
    else:
        frames = np.asarray(frames, dtype=np.uint8)
        labels, names = [None] * len(frames), [f"frame{i}" for i in range(len(frames))]
    if frames.shape[1:] != shape:
        raise TflmError(f"frames of shape {frames.shape[1:]} do not match the model input {shape}")
    class_names = list(meta.get("class_names") or
                       [f"class{i}" for i in range(int(np.prod(tfb.tensors[tfb.outputs[0]].shape)))])
    positive = class_names.index("person") if "person" in class_names else min(1, len(class_names) - 1)

    cxx_flags, link_inputs = [], []
    if library is not None:
        cxx_flags = [*library.defines, *(f"-isystem{d}" for d in library.include_dirs)]
        link_inputs = [str(library.library)]
    options = harness.HarnessOptions(opt_level=opt_level, max_frames=max_frames, profile=profile,
                                     stack_size=stack_size, positive_class=positive, arena_bytes=arena,
                                     include_dirs=("runtime", "tflm"), cxx_flags=tuple(cxx_flags),
                                     link_inputs=tuple(link_inputs))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build.", dir=out_dir.parent))
    try:
        work = staging / out_dir.name
        harness.render_harness(board, work, model_sources=sources, model_name=name or "model",
                               frames=[f.tobytes() for f in frames] if builtin else [],
                               frame_source=frame_source, options=options, input_bytes=inp.nbytes)
        (work / "model_tflm.tflite").write_bytes(data)
        size = {}
        elf = work / "firmware.elf"
        if compile:
            elf = harness.build_firmware(work)
            size = harness.size_report(elf, board)
            size["elf"] = str(out_dir / "firmware.elf")   # where it ends up, not the staging copy
        size.update({"model": str(model_path), "model_name": name or "model", "board": board.name, "runtime": "tflm",
                     "tflm_library": str(library.library) if library else None,
                     "arena_bytes": arena, "tflm_model_bytes": len(data), "resolver": [r["name"] for r in resolver],
                     "frame_source": frame_source, "opt_level": opt_level, "notes": notes})
        (work / "size.json").write_text(json.dumps(size, indent=2, default=str) + "\n")
        with atomic.directory(out_dir) as final:
            final.rmdir()
            shutil.move(str(work), str(final))
    except (harness.HarnessError, atomic.OutputError) as e:
        package = missing_package(str(e))
        if package:
            raise TflmError(f"the TFLM firmware does not build: the Debian package {package} is missing "
                            f"(sudo apt-get install {package}); the compiler said:\n{e}") from None
        raise TflmError(str(e)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return TflmBuildResult(board=board, out_dir=out_dir, elf=out_dir / "firmware.elf", model_path=model_path,
                           library=library, size=size, frames=frames, frame_labels=list(labels),
                           frame_names=list(names), class_names=class_names, resolver=resolver,
                           arena_bytes=arena, tflm_model_bytes=len(data), notes=notes)


def format_size_report(result: TflmBuildResult) -> str:
    s, b = result.size, result.board
    lines = [f"firmware: {result.elf} (TensorFlow Lite Micro)", f"board: {b.name} — {b.description}",
             f"model: {result.model_path}"]
    if result.library is not None:
        lines.append(f"TFLM library: {result.library.library} (BUILD_TYPE={result.library.build_type})")
    if "flash_bytes" in s:
        lines += [
            f"flash: {s['flash_bytes']:,} of {b.flash.length:,} bytes ({100 * s['flash_bytes'] / b.flash.length:.1f}%)",
            f"RAM:   {s['ram_bytes']:,} of {b.ram.length:,} bytes ({100 * s['ram_bytes'] / b.ram.length:.1f}%), "
            f"of which stack budget {s.get('stack_bytes', 0):,} and tensor arena {result.arena_bytes:,}",
        ]
    lines += [f"flatbuffer for TFLM: {result.tflm_model_bytes:,} bytes (model_tflm.tflite)",
              f"resolver: {', '.join(r['name'] for r in result.resolver)}",
              "arena: sized from the model; the boot line's `arena` is TFLM's arena_used_bytes()"]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
