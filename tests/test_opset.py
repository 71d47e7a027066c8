"""larq_glt/opset.py is the contract deploy/lower implements: one lowering per
runtime op, one numpy evaluator per encoder op; and larq_glt never imports deploy."""
import ast
from pathlib import Path

import dataclasses

import numpy as np
import pytest

from deploy.lower import LOWERINGS, UnsupportedOpError, lower_operator
from deploy.lower.frontend import ENCODER_EVALUATORS
from larq_glt import report
from larq_glt.flatbuffer import read_model_bytes
from larq_glt.opset import ENCODER_OPS, RUNTIME_OPS, parameter_problems

ROOT = Path(__file__).resolve().parents[1]


def test_every_runtime_op_has_a_lowering_and_no_other():
    assert set(LOWERINGS) == set(RUNTIME_OPS)


def test_every_encoder_op_has_an_evaluator_and_no_other():
    assert set(ENCODER_EVALUATORS) == set(ENCODER_OPS)


def test_larq_glt_never_imports_deploy():
    for path in sorted((ROOT / "larq_glt").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "deploy" or n.startswith("deploy.") for n in names), path


def _with_argmax(model, *, type_name="FLOAT32", axis=-1):
    """``model`` with an ARG_MAX appended: over its logits, or (another type) over a
    constant of that type and the logits' shape."""
    from larq_glt.flatbuffer import Operator

    tensors = list(model.tensors)
    logits = tensors[model.outputs[0]]
    if type_name != "FLOAT32":
        dtype = np.dtype(type_name.lower())
        logits = dataclasses.replace(logits, index=len(tensors), name="model/argmax/ints", type_name=type_name,
                                     dtype=dtype, data=np.zeros(logits.shape, dtype))
        tensors.append(logits)
    axis_t = dataclasses.replace(logits, index=len(tensors), name="model/argmax/axis", shape=(1,),
                                 type_name="INT32", dtype=np.dtype(np.int32), data=np.array([axis], np.int32))
    out_t = dataclasses.replace(logits, index=len(tensors) + 1, name="model/argmax/ArgMax", shape=(1,),
                                type_name="INT32", dtype=np.dtype(np.int32), data=None)
    tensors += [axis_t, out_t]
    op = Operator(index=len(model.operators), opcode="ARG_MAX", builtin=True,
                  inputs=(logits.index, axis_t.index), outputs=(out_t.index,), builtin_options={})
    return dataclasses.replace(model, tensors=tuple(tensors), operators=tuple(model.operators) + (op,),
                               outputs=(out_t.index,))


@pytest.mark.parametrize("type_name, axis, why", [("INT32", -1, "float only"), ("FLOAT32", 0, "last axis")])
def test_parameters_the_runtime_cannot_run_are_refused_by_export_and_build_alike(
        exported_default, type_name, axis, why):
    model = read_model_bytes((exported_default / "model.tflite").read_bytes())
    assert parameter_problems(model) == []
    report.check_deployable(model)
    assert [op.opcode for op, _ in parameter_problems(_with_argmax(model))] == []
    bad = _with_argmax(model, type_name=type_name, axis=axis)
    [(op, reason)] = parameter_problems(bad)
    assert op.opcode == "ARG_MAX" and why in reason
    with pytest.raises(report.ReportError, match=f"op ARG_MAX \\(operator {op.index}, from Keras layer 'argmax'\\)"
                       f".*{why}"):
        report.check_deployable(bad)
    with pytest.raises(UnsupportedOpError, match=why):   # the firmware build: the same words
        lower_operator(bad, op)
