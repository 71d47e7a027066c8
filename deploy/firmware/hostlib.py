"""Host build of deploy/runtime for tests: a shared library loaded with ctypes,
ctypes mirrors of the parameter structs, and a runner for lowered KernelCalls.

The mirrors are checked against the C compiler (sizeof and offset of the last
field, exported by layout.c) when the library is loaded.
"""
from __future__ import annotations

import ctypes as C
import shutil
import subprocess
from pathlib import Path

import numpy as np

from deploy.templates import RUNTIME_DIR as RUNTIME

HERE = Path(__file__).resolve().parent
CFLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]

i32, f32 = C.c_int32, C.c_float
P = C.c_void_p


class BConv2D(C.Structure):
    _fields_ = [(n, i32) for n in (
        "in_h", "in_w", "in_words", "out_h", "out_w", "out_c", "filter_h", "filter_w",
        "group_words", "groups", "stride_h", "stride_w", "dilation_h", "dilation_w",
        "pad_top", "pad_left", "zero_padding", "binary_zero_point", "output_type",
        "clamp_min", "clamp_max", "lane_groups", "lane_planes")] + [(n, P) for n in (
        "filter", "multiplier", "bias", "thresholds", "tap_popcount", "lane_filter",
        "lane_thresholds", "scratch")]


class Shortcut(C.Structure):
    _fields_ = [("conv", BConv2D), ("shortcut_thresholds", P), ("lane_shortcut_thresholds", P), ("scratch", P)]


class BMaxPool(C.Structure):
    _fields_ = [(n, i32) for n in (
        "in_h", "in_w", "words", "out_h", "out_w", "filter_h", "filter_w", "stride_h",
        "stride_w", "pad_top", "pad_left")]


class Quantize(C.Structure):
    _fields_ = [("rows", i32), ("cols", i32), ("zero_point", i32)]


class Dequantize(C.Structure):
    _fields_ = [("rows", i32), ("cols", i32), ("zero_bit_value", i32), ("one_bit_value", i32)]


class Frontend(C.Structure):
    _fields_ = [("pixels", i32), ("channels", i32), ("words", i32), ("lut", P)]


class Stem(C.Structure):
    _fields_ = [(n, i32) for n in (
        "in_h", "in_w", "channels", "words", "out_h", "out_w", "out_c", "filter_h", "filter_w",
        "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left", "zero_padding",
        "binary_zero_point", "output_type", "clamp_min", "clamp_max", "lane_groups", "lane_planes",
        "lv_groups",
        "lv_rows", "lv_segment_taps")] + [(n, P) for n in (
        "lut", "filter", "multiplier", "bias", "thresholds", "tap_popcount", "lane_filter",
        "lane_thresholds", "lv_offset", "lv_table", "lv_compare", "scratch")]


class Mean(C.Structure):
    _fields_ = [("pixels", i32), ("channels", i32)]


class AvgPool(C.Structure):
    _fields_ = [(n, i32) for n in (
        "in_h", "in_w", "channels", "out_h", "out_w", "filter_h", "filter_w", "stride_h",
        "stride_w", "pad_top", "pad_left")] + [("act_min", f32), ("act_max", f32)]


class FullyConnected(C.Structure):
    _fields_ = [("batches", i32), ("in_features", i32), ("out_features", i32),
                ("act_min", f32), ("act_max", f32), ("weights", P), ("bias", P)]


class Softmax(C.Structure):
    _fields_ = [("rows", i32), ("cols", i32), ("beta", f32)]


class ArgMax(C.Structure):
    _fields_ = [("rows", i32), ("cols", i32), ("output_int64", i32)]


class Copy(C.Structure):
    _fields_ = [("bytes", i32)]


class WordGather(C.Structure):
    _fields_ = [("pixels", i32), ("words", i32), ("order", P)]


STRUCTS = {
    "glt_bconv2d_params": BConv2D,
    "glt_shortcut_params": Shortcut,
    "glt_bmaxpool_params": BMaxPool,
    "glt_quantize_params": Quantize,
    "glt_dequantize_params": Dequantize,
    "glt_frontend_params": Frontend,
    "glt_stem_params": Stem,
    "glt_mean_params": Mean,
    "glt_avgpool_params": AvgPool,
    "glt_fully_connected_params": FullyConnected,
    "glt_softmax_params": Softmax,
    "glt_argmax_params": ArgMax,
    "glt_copy_params": Copy,
    "glt_word_gather_params": WordGather,
}


def build(out_dir: Path, cc: str = "gcc") -> C.CDLL:
    """Compiles every deploy/runtime/*.c (plus layout.c) into a shared library."""
    if shutil.which(cc) is None:
        raise RuntimeError(f"{cc} not found")
    out_dir = Path(out_dir)
    lib_path = out_dir / "libglt_runtime.so"
    sources = sorted(RUNTIME.glob("*.c")) + [HERE / "hostlib_layout.c"]
    cmd = [cc, *CFLAGS, "-shared", "-fPIC", f"-I{RUNTIME}", *map(str, sources), "-o", str(lib_path)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    lib = C.CDLL(str(lib_path))
    for name, cls in STRUCTS.items():
        size = getattr(lib, f"glt_test_sizeof_{name}")
        last = getattr(lib, f"glt_test_last_offset_{name}")
        size.restype = last.restype = C.c_size_t
        last_field = cls._fields_[-1][0]
        if size() != C.sizeof(cls) or last() != getattr(cls, last_field).offset:
            raise AssertionError(f"ctypes mirror of {name} does not match the C layout")
    return lib


def ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


class Params:
    """A ctypes params struct filled from scalar and array fields; keeps arrays alive."""

    def __init__(self, params_type: str, params: dict, arrays: dict, scratch_bytes: int = 0):
        cls = STRUCTS[params_type]
        self.arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        self.struct = cls()
        for k, v in params.items():
            self._set(params_type, k, v)
        for k, v in self.arrays.items():
            self._set(params_type, k, v.ctypes.data)
        if scratch_bytes:
            self.scratch = np.zeros((scratch_bytes + 3) // 4, dtype=np.uint32)
            self.struct.scratch = self.scratch.ctypes.data

    def _set(self, params_type: str, key: str, value) -> None:
        # "conv.in_h": a field of a nested struct (a C designator)
        *path, field = key.split(".")
        target = self.struct
        for name in path:
            target = getattr(target, name)
        if field not in {f for f, _ in type(target)._fields_}:
            raise KeyError(f"{params_type} has no field {key}")
        setattr(target, field, value)

    @property
    def ref(self):
        return C.byref(self.struct)


def call(lib: C.CDLL, function: str, params: Params, inp: np.ndarray, out: np.ndarray) -> None:
    fn = getattr(lib, function)
    fn.restype = None
    fn(params.ref, C.c_void_p(inp.ctypes.data), C.c_void_p(out.ctypes.data))


def run_call(lib: C.CDLL, kcall, tensors, inp: np.ndarray, reference: bool = False) -> np.ndarray:
    """Runs one lowered KernelCall on `inp`; returns the output tensor as numpy."""
    out_t = tensors[kcall.outputs[0]]
    inp = np.ascontiguousarray(inp)
    if inp.nbytes != kcall.input_bytes[0]:
        raise ValueError(f"{kcall.op_name}: input has {inp.nbytes} bytes, expected {kcall.input_bytes[0]}")
    if out_t.nbytes == kcall.output_bytes[0]:
        out = np.zeros(out_t.shape, dtype=out_t.dtype)
    else:  # a fused call stores a float tensor of the flatbuffer as bits
        out = np.zeros(kcall.output_bytes[0] // 4, dtype=np.uint32)
    params = Params(kcall.params_type, kcall.params, kcall.arrays, kcall.scratch_bytes)
    call(lib, kcall.reference_function if reference else kcall.function, params, inp, out)
    return out
