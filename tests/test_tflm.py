"""TensorFlow Lite Micro target (deploy/tflm/*.py, deploy/tflm/*.cc).

Without a TFLM tree: the custom options the TFLM kernels read against what LCE
wrote, the flatbuffer rewrite (fused input encoder), the resolver list, the
rendered sources and the errors for a missing or unbuilt --tflm-dir.
With TFLM_DIR (a tflite-micro checkout with libtensorflow-microlite.a built for
cortex-m7+fp, see README): the firmware in QEMU equals the generated runtime and
the LCE interpreter bit for bit.
"""
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tflite
from flatbuffers import flexbuffers

from deploy import lower
from deploy.tflm import target as tflm
from larq_glt.flatbuffer import read_model_bytes
from tests.conftest import have_arm_toolchain

ROOT = Path(__file__).resolve().parents[1]
TFLM_DIR = os.environ.get("TFLM_DIR")


def _model(exported):
    data = (exported / "model.tflite").read_bytes()
    return data, read_model_bytes(data)


def _raw_custom_options(data: bytes) -> list[tuple[str, dict]]:
    """(op name, options) straight from the flatbuffer with tflite + flexbuffers,
    independently of larq_glt.flatbuffer."""
    m = tflite.Model.GetRootAsModel(data, 0)
    sg = m.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        if code.CustomCode():
            raw = op.CustomOptionsAsNumpy()
            raw = b"" if isinstance(raw, int) else bytes(raw)   # 0: no options
            opts = flexbuffers.Loads(raw) if raw else {}
            out.append((code.CustomCode().decode(), opts))
    return out


# ----------------------------------------------------------------- custom options


def test_option_keys_are_the_ones_the_cpp_kernels_read():
    """tflm.OPTION_KEYS mirrors the kOptionKeys tables of the C++ kernels."""
    for op, source in (("LceBconv2d", "lce_bconv2d.cc"), ("LceBMaxPool2d", "lce_bmaxpool2d.cc")):
        text = (ROOT / "deploy" / "tflm" / source).read_text()
        table = re.search(r"kOptionKeys\[kNumOptions\] = \{(.*?)\};", text, re.S)[1]
        assert tuple(re.findall(r'"(\w+)"', table)) == tflm.OPTION_KEYS[op]


def test_options_read_equal_what_lce_wrote(exported_default):
    data, model = _model(exported_default)
    got = tflm.lce_options(model)
    raw = _raw_custom_options(data)
    assert [g["op"] for g in got] == [name for name, _ in raw]
    for g, (name, opts) in zip(got, raw):
        assert set(tflm.OPTION_KEYS[name]) <= set(opts), name
        assert g["options"] == {k: int(opts[k]) for k in tflm.OPTION_KEYS[name]}
    convs = [g["options"] for g in got if g["op"] == "LceBconv2d"]
    # the GLT stem: 3 colour channels x 8 thresholds, 4x4 stride 4; the classifier: VALID, zero pad value
    assert convs[0]["channels_in"] == 24 and convs[0]["stride_height"] == 4
    assert convs[-1]["padding"] == 1 and convs[-1]["pad_values"] == 0


def test_missing_custom_option_is_refused(exported_default):
    _, model = _model(exported_default)
    ops = list(model.operators)
    k = next(i for i, op in enumerate(ops) if op.opcode == "LceBconv2d")
    opts = dict(ops[k].custom_options)
    del opts["pad_values"]
    ops[k] = dataclasses.replace(ops[k], custom_options=opts)
    broken = dataclasses.replace(model, operators=tuple(ops) if isinstance(model.operators, tuple) else ops)
    with pytest.raises(tflm.TflmError, match="pad_values"):
        tflm.lce_options(broken)


# ----------------------------------------------------------------- the flatbuffer for TFLM


def test_encoder_is_fused_into_one_op(exported_default):
    data, model = _model(exported_default)
    out, notes = tflm.tflm_model(data, model, accelerate=False)
    t = read_model_bytes(out)
    front = lower.find_frontend(model)
    fused = set(front.op_indices)
    rest = [op for op in model.operators if op.index not in fused]
    assert [op.opcode for op in t.operators] == ["GltFrontend"] + [op.opcode for op in rest]
    assert "CAST" in notes[0] and "GltFrontend" in notes[0]
    # the fused op: raw frame + its tables in, the LceQuantize output out
    op0 = t.operators[0]
    frame, tables, packed = (t.tensors[i] for i in (*op0.inputs, op0.outputs[0]))
    assert frame.type_name == "UINT8" and list(frame.shape) == list(model.tensors[model.inputs[0]].shape)
    assert tables.type_name == "INT32"
    np.testing.assert_array_equal(tables.data.view(np.uint32).reshape(-1), front.arrays["lut"])
    assert list(packed.shape) == list(model.tensors[front.outputs[0]].shape)
    # every other op unchanged: options, constant inputs, tensor shapes
    for a, b in zip(rest, t.operators[1:]):
        assert a.custom_options == b.custom_options and a.builtin_options == b.builtin_options
        for i, j in zip(a.inputs, b.inputs):
            assert (i < 0) == (j < 0)
            if i >= 0:
                ta, tb = model.tensors[i], t.tensors[j]
                assert list(ta.shape) == list(tb.shape) and ta.type_name == tb.type_name
                if ta.data is not None:
                    np.testing.assert_array_equal(ta.data, tb.data)
    # no encoder intermediates or constants left (TFLM would keep bookkeeping for them)
    referenced = set(t.inputs) | set(t.outputs) | {i for op in t.operators for i in (*op.inputs, *op.outputs)}
    assert referenced - {-1} == set(range(len(t.tensors)))
    assert len(t.tensors) < len(model.tensors)


def _cpp_strings(source: str, table: str) -> tuple[str, ...]:
    text = (ROOT / "deploy" / "tflm" / source).read_text()
    body = re.search(table + r"\[\] = \{(.*?)\};", text, re.S)[1]
    return tuple(re.findall(r'"(\w+)"', body))


def _cpp_constant(source: str, name: str) -> int:
    text = (ROOT / "deploy" / "tflm" / source).read_text()
    return int(re.search(name + r" = (\d+);", text)[1])


def test_accelerated_model_carries_the_generated_runtime_tables(exported_default):
    """GltStem and the lane tables are the lowering's own kernel calls, field for field."""
    data, model = _model(exported_default)
    out, notes = tflm.tflm_model(data, model)
    t = read_model_bytes(out)
    calls = lower.lower_model(model)
    stem = calls[0]
    assert stem.function == "glt_stem_opt" and t.operators[0].opcode == "GltStem"
    op = t.operators[0]
    opts = dict(op.custom_options)
    assert opts.pop("scratch_bytes") == stem.scratch_bytes
    assert opts == {k: int(v) for k, v in stem.params.items()}
    # the C++ kernel reads exactly these fields and arrays
    assert set(_cpp_strings("glt_stem_op.cc", "kIntFields")) == set(stem.params)
    assert _cpp_strings("glt_stem_op.cc", "kArrayInputs") == tflm.STEM_ARRAYS
    assert set(stem.arrays) <= set(tflm.STEM_ARRAYS)
    for name, i in zip(tflm.STEM_ARRAYS, op.inputs[1:]):
        if name in stem.arrays and name not in stem.reference_arrays:
            assert t.tensors[i].data.tobytes() == np.ascontiguousarray(stem.arrays[name]).tobytes(), name
        else:
            assert i == -1, name
    # lane tables: inputs 5 and 6 of every other bit-packed LceBconv2d, as lowered
    convs = [c for c in calls if c.op_name == "LceBconv2d" and "lane_filter" in c.arrays]
    tops = [o for o in t.operators if o.opcode == "LceBconv2d" and len(o.inputs) == 7]
    assert len(convs) == len(tops) >= 3 and "lane tables" in notes[1]
    for c, o in zip(convs, tops):
        assert t.tensors[o.inputs[5]].data.view(np.uint32).tolist() == c.arrays["lane_filter"].tolist()
        assert t.tensors[o.inputs[6]].data.view(np.uint32).tolist() == c.arrays["lane_thresholds"].tolist()
    assert _cpp_constant("kernel_params.h", "kLanesAccMax") == lower.LANES_ACC_MAX
    assert _cpp_constant("kernel_params.h", "kLaneThresholdWords") == lower.LANE_THRESHOLD_WORDS


# ----------------------------------------------------------------- kernel parameters, C++ vs Python

SHIPPED = ROOT / "models" / "person_detect" / "model.tflite"
# Feeds one op to deploy/tflm/kernel_params.cc (the computation of the TFLM
# kernels' Prepare, which includes no TFLM header) and prints what it computed.
# stdin, whitespace-separated integers (floats as their IEEE bits):
#   bconv2d: 8 options, input [H W words], filter [O H W words], output type,
#            output [H W C], the filter words; then for bits output: O thresholds,
#            lane filter and lane threshold sizes (0 0: none); else: scale,
#            zero point, O multipliers, O biases
#   bmaxpool: 5 options, input [H W words], output [H W words]
_DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include <string>
#include <vector>
#include "kernel_params.h"
using namespace larq_glt::tflm;
static long long Next() { long long v; if (scanf("%lld", &v) != 1) v = 0; return v; }
static float Float() { uint32_t u = (uint32_t)Next(); float f; memcpy(&f, &u, 4); return f; }
static uint32_t Bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static int Fail(const ParamError& e) { printf("error "); printf(e.format, e.a, e.b, e.c); printf("\n"); return 0; }
#define FIELD(p, f) printf(#f " %lld\n", (long long)(p).f)
int main() {
  char op[16] = "";
  if (scanf("%15s", op) != 1) return 1;
  int32_t in[3], out[3];
  if (!strcmp(op, "bmaxpool")) {
    BMaxPool2dOptions o;
    for (int32_t* f : {&o.filter_h, &o.filter_w, &o.stride_h, &o.stride_w, &o.padding}) *f = Next();
    for (int32_t& d : in) d = Next();
    for (int32_t& d : out) d = Next();
    glt_bmaxpool_params p = {};
    ParamError e = BMaxPool2dGeometry(o, in, out, &p);
    if (e.format) return Fail(e);
    FIELD(p, in_h); FIELD(p, in_w); FIELD(p, words); FIELD(p, out_h); FIELD(p, out_w);
    FIELD(p, filter_h); FIELD(p, filter_w); FIELD(p, stride_h); FIELD(p, stride_w);
    FIELD(p, pad_top); FIELD(p, pad_left);
    return 0;
  }
  Bconv2dOptions o;
  for (int32_t* f : {&o.channels_in, &o.stride_h, &o.stride_w, &o.dilation_h, &o.dilation_w,
                     &o.padding, &o.pad_values, &o.activation}) *f = Next();
  int32_t filter[4];
  for (int32_t& d : in) d = Next();
  for (int32_t& d : filter) d = Next();
  const int32_t output_type = Next();
  for (int32_t& d : out) d = Next();
  std::vector<uint32_t> words(filter[0] * filter[1] * filter[2] * filter[3]);
  for (uint32_t& w : words) w = (uint32_t)Next();
  glt_bconv2d_params p = {};
  ParamError e = Bconv2dGeometry(o, in, filter, output_type, out, &p);
  if (e.format) return Fail(e);
  printf("array");
  if (output_type == GLT_OUT_BITS) {
    std::vector<int32_t> t(p.out_c), clamped(p.out_c);
    for (int32_t& v : t) v = Next();
    Bconv2dClampThresholds(t.data(), p.out_c, clamped.data());
    const int32_t lane_filter = Next(), lane_thresholds = Next();
    if (lane_filter || lane_thresholds) {
      e = Bconv2dLanes(o, lane_filter, lane_thresholds, &p);
      if (e.format) { printf("\n"); return Fail(e); }
    }
    printf(" thresholds");
    for (int32_t v : clamped) printf(" %d", v);
  } else {
    const float scale = Float();
    const int32_t zero_point = Next();
    std::vector<float> m(p.out_c), b(p.out_c), fused(2 * p.out_c);
    for (float& v : m) v = Float();
    for (float& v : b) v = Float();
    Bconv2dFuseOutput(o, m.data(), b.data(), scale, zero_point, fused.data(), &p);
    printf(" multiplier");
    for (int32_t c = 0; c < p.out_c; ++c) printf(" %u", Bits(p.multiplier[c]));
    printf("\narray bias");
    for (int32_t c = 0; c < p.out_c; ++c) printf(" %u", Bits(p.bias[c]));
  }
  printf("\n");
  if (p.zero_padding) {
    std::vector<uint16_t> per_tap(p.out_c * p.filter_h * p.filter_w);
    Bconv2dTapPopcounts(p, words.data(), per_tap.data());
    printf("array tap_popcount");
    for (uint16_t v : per_tap) printf(" %u", v);
    printf("\n");
  }
  FIELD(p, in_h); FIELD(p, in_w); FIELD(p, in_words); FIELD(p, out_h); FIELD(p, out_w);
  FIELD(p, out_c); FIELD(p, filter_h); FIELD(p, filter_w); FIELD(p, group_words); FIELD(p, groups);
  FIELD(p, stride_h); FIELD(p, stride_w); FIELD(p, dilation_h); FIELD(p, dilation_w);
  FIELD(p, pad_top); FIELD(p, pad_left); FIELD(p, zero_padding); FIELD(p, binary_zero_point);
  FIELD(p, output_type); FIELD(p, clamp_min); FIELD(p, clamp_max); FIELD(p, lane_groups);
  FIELD(p, lane_planes);
  return 0;
}
"""


@pytest.fixture(scope="module")
def kernel_params_driver(tmp_path_factory):
    """deploy/tflm/kernel_params.cc compiled alone with the host's g++ (no TFLM tree)."""
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    d = tmp_path_factory.mktemp("kernel_params")
    (d / "driver.cc").write_text(_DRIVER)
    exe = d / "driver"
    subprocess.run(["g++", "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                    f"-I{ROOT / 'deploy' / 'tflm'}", f"-I{ROOT / 'deploy' / 'runtime'}", str(d / "driver.cc"),
                    str(ROOT / "deploy" / "tflm" / "kernel_params.cc"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)

    def run(tokens) -> tuple[dict, dict]:
        done = subprocess.run([str(exe)], input=" ".join(map(str, tokens)), capture_output=True, text=True,
                              check=True)
        fields, arrays = {}, {}
        for line in done.stdout.splitlines():
            name, *values = line.split()
            if name == "error":
                raise AssertionError(f"kernel_params refused the op: {' '.join(values)}")
            if name == "array":
                arrays[values[0]] = [int(v) for v in values[1:]]
            else:
                fields[name] = int(values[0])
        return fields, arrays

    return run


def _cpp_kernel_params(run, model, op, call) -> tuple[dict, dict]:
    """What kernel_params.cc computes for ``op``, given what the TFLM kernel reads
    (the lane table sizes: those deploy/tflm adds, i.e. the lowering's)."""
    opts = op.custom_options
    inp, out = model.tensors[op.inputs[0]], model.tensors[op.outputs[0]]
    if op.opcode == "LceBMaxPool2d":
        keys = tflm.OPTION_KEYS["LceBMaxPool2d"]
        return run(["bmaxpool", *(int(opts[k]) for k in keys), *inp.shape[1:], *out.shape[1:]])
    keys = tflm.OPTION_KEYS["LceBconv2d"]
    filt = model.tensors[op.inputs[1]]
    out_type = {"INT32": lower.OUT_BITS, "FLOAT32": lower.OUT_FLOAT, "INT8": lower.OUT_INT8}[out.type_name]
    tokens = ["bconv2d", *(int(opts[k]) for k in keys), *inp.shape[1:], *filt.shape, out_type, *out.shape[1:],
              *np.ascontiguousarray(filt.data).view(np.uint32).reshape(-1)]
    if out_type == lower.OUT_BITS:
        tokens += [*model.tensors[op.inputs[4]].data.astype(np.int64).reshape(-1),
                   call.arrays["lane_filter"].size if "lane_filter" in call.arrays else 0,
                   call.arrays["lane_thresholds"].size if "lane_thresholds" in call.arrays else 0]
    else:
        bits = lambda i: model.tensors[op.inputs[i]].data.astype(np.float32).view(np.uint32).reshape(-1)  # noqa: E731
        scale = np.float32(out.scale[0] if out_type == lower.OUT_INT8 else 1.0).view(np.uint32)
        zp = int(out.zero_point[0]) if out_type == lower.OUT_INT8 else 0
        tokens += [scale, zp, *bits(2), *bits(3)]
    return run(tokens)


def _compare_kernel_params(run, model) -> int:
    """Every LceBconv2d and LceBMaxPool2d of ``model``: kernel_params.cc == deploy/lower/,
    field for field and array for array. Returns the number of ops compared."""
    n = 0
    for op in model.operators:
        if op.opcode not in ("LceBconv2d", "LceBMaxPool2d"):
            continue
        call = lower.lower_operator(model, op)
        fields, arrays = _cpp_kernel_params(run, model, op, call)
        assert fields == {k: int(v) for k, v in call.params.items()}, (op.index, op.opcode)
        as_bits = {"multiplier": np.uint32, "bias": np.uint32}
        want = {k: np.asarray(v).view(as_bits[k]) if k in as_bits else np.asarray(v)
                for k, v in call.arrays.items() if k in ("thresholds", "multiplier", "bias", "tap_popcount")}
        assert set(arrays) == set(want), (op.index, op.opcode)
        for k, v in want.items():
            assert arrays[k] == v.astype(np.int64).tolist(), (op.index, op.opcode, k)
        n += 1
    return n


def test_kernel_params_equal_the_lowering_default_model(exported_default, kernel_params_driver):
    """The TFLM kernels' parameters (kernel_params.cc, compiled on the host) are
    deploy/lower/'s: bit-packed output with lane tables, float output."""
    _, model = _model(exported_default)
    assert _compare_kernel_params(kernel_params_driver, model) >= 5


@pytest.mark.skipif(not SHIPPED.exists(), reason="models/person_detect/model.tflite not present")
def test_kernel_params_equal_the_lowering_shipped_model(kernel_params_driver):
    model = read_model_bytes(SHIPPED.read_bytes())
    assert _compare_kernel_params(kernel_params_driver, model) >= 5


def test_kernel_params_equal_the_lowering_lce_test_models(tmp_path_factory, kernel_params_driver):
    """The LCE-converted test models: zero padding (tap popcounts), groups, strides,
    dilation, VALID padding, a relu-fused float output."""
    from tests import lce_models

    for build, ops in ((lce_models.body_model, 7), (lce_models.head_model, 2)):
        model = read_model_bytes(lce_models.convert(build()))
        assert _compare_kernel_params(kernel_params_driver, model) == ops


def test_rewritten_buffers_are_16_byte_aligned(exported_default):
    data, model = _model(exported_default)
    out, _ = tflm.tflm_model(data, model)
    m = tflite.Model.GetRootAsModel(out, 0)
    starts = []
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        if b.DataLength():
            starts.append(b._tab.Vector(b._tab.Offset(4)))
    assert starts and all(s % 16 == 0 for s in starts)


def test_arena_estimate_fused_vs_literal_encoder(exported_default):
    """Why the encoder is fused: its float intermediates alone need ~1 MB."""
    data, model = _model(exported_default)
    fused = read_model_bytes(tflm.tflm_model(data, model)[0])
    assert tflm.estimate_arena(fused) < 200_000
    assert tflm.estimate_arena(model) > 96 * 96 * 24 * 4


# ----------------------------------------------------------------- resolver


def test_resolver_holds_only_the_ops_used(exported_default):
    data, model = _model(exported_default)
    fused = read_model_bytes(tflm.tflm_model(data, model)[0])
    assert [(r["kind"], r["name"]) for r in tflm.resolver_ops(fused)] == [
        ("custom", "GltStem"), ("custom", "LceBMaxPool2d"), ("custom", "LceBconv2d"),
        ("builtin", "RESHAPE")]
    plain = read_model_bytes(tflm.tflm_model(data, model, accelerate=False)[0])
    assert [r["name"] for r in tflm.resolver_ops(plain)] == ["GltFrontend", "LceBconv2d", "LceBMaxPool2d", "RESHAPE"]
    literal = tflm.resolver_ops(model)
    assert [r["name"] for r in literal] == ["CAST", "RESHAPE", "SUB", "LceQuantize", "LceBconv2d", "LceBMaxPool2d"]
    assert {r["name"]: r.get("method") for r in literal if r["kind"] == "builtin"} == {
        "CAST": "AddCast", "RESHAPE": "AddReshape", "SUB": "AddSub"}


@pytest.mark.parametrize("builtin, method", [("FULLY_CONNECTED", "AddFullyConnected"), ("CONV_2D", "AddConv2D"),
                                             ("AVERAGE_POOL_2D", "AddAveragePool2D"), ("ARG_MAX", "AddArgMax")])
def test_builtin_method_names(builtin, method):
    assert tflm.resolver_method(builtin) == method


def test_resolver_checks_the_tree_and_custom_ops(exported_default, tmp_path):
    _, model = _model(exported_default)
    header = tmp_path / "tensorflow/lite/micro/micro_mutable_op_resolver.h"
    header.parent.mkdir(parents=True)
    header.write_text("TfLiteStatus AddCast(\nTfLiteStatus AddSub(\n")
    with pytest.raises(tflm.TflmError, match="AddReshape"):
        tflm.resolver_ops(model, tmp_path)
    ops = list(model.operators)
    ops[5] = dataclasses.replace(ops[5], opcode="LceBconv3d")
    with pytest.raises(tflm.TflmError, match="LceBconv3d"):
        tflm.resolver_ops(dataclasses.replace(model, operators=ops))


# ----------------------------------------------------------------- sources


def test_rendered_sources_without_tflm(exported_default, tmp_path):
    r = tflm.build("mps2-an500", model=exported_default / "model.tflite", out=tmp_path / "fw",
                   compile=False, max_frames=2, frames=np.zeros((2, 96, 96, 3), np.uint8))
    d = r.out_dir
    cc = (d / "model_tflm.cc").read_text()
    assert "MicroMutableOpResolver<4>" in cc and "AddReshape()" in cc and "Register_LceBconv2d" in cc
    assert "AddCast" not in cc
    data = (d / "model_data.cc").read_text()
    body = data[data.index("{"):data.index("};")]
    assert bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", body)) == (d / "model_tflm.tflite").read_bytes()
    assert "alignas(16)" in data
    make = (d / "Makefile").read_text()
    assert "$(CROSS)g++" in make and "tflm/lce_bconv2d.cc" in make and "model_tflm.cc" in make
    assert "-ffp-contract=off" in make
    header = (d / "model.h").read_text()
    assert "model_arena_used_bytes()" in header and "MODEL_NUM_OPS 10" in header


def test_c_only_builds_keep_the_c_linker(tmp_path):
    from deploy.firmware import harness

    out = harness.render_harness("mps2-an500", tmp_path / "h", model_sources={
        "model.h": "#define MODEL_NUM_CLASSES 2\n"}, frames=[b"\0"])
    make = (out / "Makefile").read_text()
    assert "g++" not in make and "LD_DRIVER := $(CC)" in make


# ----------------------------------------------------------------- the TFLM tree


def _fake_tree(root: Path, libs=()):
    (root / "tensorflow/lite/micro").mkdir(parents=True)
    (root / "tensorflow/lite/micro/micro_interpreter.h").write_text("")
    for sub in ("flatbuffers/include", "gemmlowp", "ruy"):
        (root / "tensorflow/lite/micro/tools/make/downloads" / sub).mkdir(parents=True)
    for name in libs:
        lib = root / "gen" / name / "lib" / tflm.LIBRARY
        lib.parent.mkdir(parents=True)
        lib.write_bytes(b"!<arch>\n")
    return root


def test_missing_tflm_dir_says_how_to_build(tmp_path):
    with pytest.raises(tflm.TflmError, match="--tflm-dir") as e:
        tflm.find_library(None, "mps2-an500")
    assert "TARGET=cortex_m_generic TARGET_ARCH=cortex-m7+fp" in str(e.value) and "microlite" in str(e.value)
    with pytest.raises(tflm.TflmError, match="no such directory"):
        tflm.find_library(tmp_path / "nope", "mps2-an500")
    with pytest.raises(tflm.TflmError, match="not a TensorFlow Lite Micro tree"):
        tflm.find_library(tmp_path, "mps2-an500")


def test_unbuilt_tree_says_how_to_build(tmp_path):
    tree = _fake_tree(tmp_path / "tflm", libs=["cortex_m_generic_cortex-m7_default_gcc"])
    with pytest.raises(tflm.TflmError) as e:
        tflm.find_library(tree, "mps2-an500")
    msg = str(e.value)
    assert "no libtensorflow-microlite.a for TARGET_ARCH=cortex-m7+fp" in msg
    assert "found only gen/cortex_m_generic_cortex-m7_default_gcc" in msg   # soft-float build
    assert "make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic" in msg


def test_find_library_prefers_builds_with_logs(tmp_path):
    tree = _fake_tree(tmp_path / "tflm", libs=["cortex_m_generic_cortex-m7+fp_release_gcc",
                                               "cortex_m_generic_cortex-m7+fp_release_with_logs_gcc",
                                               "cortex_m_generic_cortex-m4+fp_default_gcc"])
    lib = tflm.find_library(tree, "mps2-an500")
    assert lib.build_type == "release_with_logs" and lib.target_arch == "cortex-m7+fp"
    assert "-DTF_LITE_STATIC_MEMORY" in lib.defines and "-DNDEBUG" in lib.defines
    assert "-DTF_LITE_STRIP_ERROR_STRINGS" not in lib.defines
    assert tflm.find_library(tree, "mps2-an386").target_arch == "cortex-m4+fp"


def test_build_py_reports_a_missing_tree(exported_default):
    proc = subprocess.run([sys.executable, "deploy/build.py", "--board", "mps2-an500", "--runtime", "tflm",
                           "--model", str(exported_default / "model.tflite")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "error: --runtime tflm needs --tflm-dir" in proc.stderr and "Traceback" not in proc.stderr


def test_benchmark_commands_name_the_users_tflm_tree_not_its_path(tmp_path):
    from bench import tflm_cost

    assert (tflm_cost.command_line("bench/mcu_cost.py", ["--tflm-dir", "/home/me/tflm", "--op-repeat", "4"])
            == "python bench/mcu_cost.py --tflm-dir <tflite-micro> --op-repeat 4")
    assert (tflm_cost.command_line("bench/tflm_cost.py", ["--tflm-dir=/x", "--model", "m.tflite"])
            == "python bench/tflm_cost.py --tflm-dir=<tflite-micro> --model m.tflite")
    assert tflm_cost.tree_commit(tmp_path) is None                    # not a git checkout
    assert tflm_cost.tree_commit(ROOT / "deploy" / "tflm") is None    # inside another repository


# ----------------------------------------------------------------- with TFLM


def _lce(tflite_path, frames):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    it = Interpreter(Path(tflite_path).read_bytes(), use_reference_bconv=True)
    return np.concatenate([it.predict(f[None]) for f in frames]).astype(np.float32)


@pytest.fixture
def tflm_dir():
    if not TFLM_DIR:
        pytest.skip("TFLM_DIR is not set: point it at a tflite-micro tree with libtensorflow-microlite.a "
                    "built for TARGET_ARCH=cortex-m7+fp (README: TensorFlow Lite Micro)")
    if not have_arm_toolchain():
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")
    return TFLM_DIR


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_tflm_firmware_in_qemu_matches_generated_runtime_and_lce(exported_default, tmp_path, tflm_dir):
    from deploy import emulators
    from deploy.firmware import image as firmware
    from deploy.emulators import protocol

    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    frames[1] = frames[1] // 4 + 30
    model = exported_default / "model.tflite"
    runs = {}
    t = tflm.build("mps2-an500", model=model, out=tmp_path / "tflm", tflm_dir=tflm_dir, frames=frames,
                   max_frames=4, profile=True)
    runs["tflm"] = emulators.run("mps2-an500", t.elf, timeout=180)
    # the plain LCE ops (options and tensors only, per-channel path) and GltFrontend
    plain = tflm.build("mps2-an500", model=model, out=tmp_path / "plain", tflm_dir=tflm_dir, frames=frames,
                       max_frames=4, accelerate=False)
    runs["tflm-plain"] = emulators.run("mps2-an500", plain.elf, timeout=180)
    g = firmware.build("mps2-an500", model=model, out=tmp_path / "gen", frames=frames, max_frames=4)
    runs["generated"] = emulators.run("mps2-an500", g.elf, timeout=180)
    logits = {}
    for name, run in runs.items():
        assert run.status == "exited" and run.exit_code == 0, run.describe()
        results = [r for r in map(protocol.parse_result, run.lines) if r]
        assert [r.frame for r in results] == [0, 1, 2, 3], name
        logits[name] = np.array([r.logit_bits for r in results], dtype=np.uint32)
    want = _lce(model, frames).view(np.uint32)
    np.testing.assert_array_equal(logits["tflm"], want)
    np.testing.assert_array_equal(logits["tflm-plain"], want)
    np.testing.assert_array_equal(logits["tflm"], logits["generated"])
    boot = next(protocol.parse_boot(line) for line in runs["tflm"].lines if protocol.parse_boot(line))
    assert 0 < int(boot.fields["arena"]) <= t.arena_bytes
    ops = [protocol.parse_ops(line) for line in runs["tflm"].lines if line.startswith("ops:")]
    assert len(ops) == 4


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_tflm_firmware_reports_a_too_small_arena(exported_default, tmp_path, tflm_dir):
    from deploy import emulators

    t = tflm.build("mps2-an500", model=exported_default / "model.tflite", out=tmp_path / "tflm", tflm_dir=tflm_dir,
                   frames=np.zeros((1, 96, 96, 3), np.uint8), max_frames=1, arena_bytes=32768)
    run = emulators.run("mps2-an500", t.elf, timeout=60)
    assert run.exit_code == 3, run.describe()
    assert any(line.startswith("tflm: ") for line in run.lines)   # TFLM's own message, on the UART
    assert any(line == "error: tflm AllocateTensors failed (see the tflm: lines above) in an arena of bytes: 32768"
               for line in run.lines), run.lines


def _tflm_and_generated_equal_lce(t, model, frames, tmp_path):
    """The TFLM firmware ``t`` and the generated runtime's, on the M7 in QEMU, give LCE's logits bit for bit."""
    from deploy import emulators
    from deploy.emulators import protocol
    from deploy.firmware import image as firmware

    g = firmware.build("mps2-an500", model=model, out=tmp_path / "gen", frames=frames, max_frames=len(frames))
    want = _lce(model, frames).view(np.uint32)
    for elf in (t.elf, g.elf):
        run = emulators.run("mps2-an500", elf, timeout=180)
        assert run.status == "exited" and run.exit_code == 0, run.describe()
        results = [r for r in map(protocol.parse_result, run.lines) if r]
        np.testing.assert_array_equal(np.array([r.logit_bits for r in results], dtype=np.uint32), want)


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_tflm_runs_shortcut_blocks_as_lce_ops(tmp_path, tflm_dir):
    """A model with binary shortcut blocks: TFLM runs LCE's four ops of each block
    (LceDequantize, LceBconv2d to float, builtin ADD, LceQuantize) unfused; its
    logits equal LCE's and the generated runtime's (which fuses them)."""
    from larq_glt import export, models, testing

    cfg = models.ModelConfig(input_size=48, stem_filters=32, blocks=(
        models.Block(64, 1, pool=True), models.Block(64, 2, pool=False, shortcut=True),
        models.Block(64, 1, pool=False, shortcut=True)))
    model = export.export_keras(testing.randomize(models.compact(cfg), seed=9), tmp_path / "export").tflite
    frames = np.random.default_rng(3).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    t = tflm.build("mps2-an500", model=model, out=tmp_path / "tflm", tflm_dir=tflm_dir, frames=frames, max_frames=3)
    assert any(op["name"] == "ADD" for op in t.resolver)
    _tflm_and_generated_equal_lce(t, model, frames, tmp_path)


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_tflm_runs_shuffled_blocks_as_lce_and_builtin_ops(tmp_path, tflm_dir):
    """A model with shuffled blocks: TFLM runs LCE's float-output LceBconv2d, the
    builtin MAX_POOL_2D and GATHER on float maps and LceQuantize, unfused; its
    logits equal LCE's and the generated runtime's (which runs them on bits)."""
    from larq_glt import export, models, testing

    cfg = models.ModelConfig(input_size=48, stem_filters=32, blocks=(
        models.Block(64, 1, pool=True), models.Block(128, 2, pool=True, shuffle=True),
        models.Block(128, 4, pool=False, shuffle=True), models.Block(64, 2, pool=False)))
    model = export.export_keras(testing.randomize(models.compact(cfg), seed=10), tmp_path / "export").tflite
    frames = np.random.default_rng(4).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    t = tflm.build("mps2-an500", model=model, out=tmp_path / "tflm", tflm_dir=tflm_dir, frames=frames, max_frames=3)
    assert {"GATHER", "MAX_POOL_2D"} <= {op["name"] for op in t.resolver}
    _tflm_and_generated_equal_lce(t, model, frames, tmp_path)
