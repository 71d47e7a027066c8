"""larq_glt/opset.py is the contract deploy/lower implements: one lowering per
runtime op, one numpy evaluator per encoder op; and larq_glt never imports deploy."""
import ast
from pathlib import Path

from deploy.lower import LOWERINGS
from deploy.lower.frontend import ENCODER_EVALUATORS
from larq_glt.opset import ENCODER_OPS, RUNTIME_OPS

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
