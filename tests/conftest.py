"""Shared fixtures: a small exported model (trained-shape, random weights and
batch-norm statistics) reused by the deploy tests."""
import shutil

import numpy as np
import pytest


def _randomize(model, seed=0):
    import tf_keras as keras

    from larq_glt import encoders

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape) * rng.choice([-1, 1], g.shape),
                               rng.normal(0, 1, b.shape), rng.normal(0, 2, m.shape), rng.uniform(0.5, 2, v.shape)])
        if isinstance(layer, encoders.GLT):
            layer.logits.assign(rng.normal(0, 1, layer.logits.shape))
    return model


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
