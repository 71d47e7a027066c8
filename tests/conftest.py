"""Shared fixtures: a small exported model (trained-shape, random weights and
batch-norm statistics) reused by the deploy tests."""
import shutil

import pytest


def _randomize(model, seed=0):
    from larq_glt import testing

    return testing.randomize(model, seed)


@pytest.fixture(scope="session")
def exported_default(tmp_path_factory):
    """The default 96x96 topology (GLT), exported: directory with model.tflite + model.json."""
    import larq_glt  # noqa: F401
    from larq_glt import export, models

    model = _randomize(models.compact())
    out = tmp_path_factory.mktemp("default") / "export"
    export.export_keras(model, out, class_names=["non_person", "person"], n_check=16)
    return out


def have_arm_toolchain() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
