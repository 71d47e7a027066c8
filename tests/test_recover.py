"""larq_glt.recover: a trained model rebuilt from its export computes what the
flatbuffer computes, and can start a run (--init-from an export)."""
from __future__ import annotations

import numpy as np
import pytest

from larq_glt import export, models, recover, runs, testing
from larq_glt import train as cli

# Negative gammas (testing.randomize) make LCE fold signs both ways; one-padding,
# a grouped block, pools after the stem and the first block, none after the last.
CONFIG = models.ModelConfig(input_size=32, levels=4, stem_filters=16, width=2.0,
                            blocks=(models.Block(64, 1), models.Block(64, 2, pool=False)))


def images(n=48, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = testing.randomize(models.compact(CONFIG), seed=3)
    for w in model.trainable_weights:  # latent weights of both signs
        if "kernel" in w.name:
            w.assign(np.random.default_rng(len(w.name)).uniform(-1, 1, w.shape).astype(np.float32))
    out = tmp_path_factory.mktemp("recover") / "export"
    export.export_keras(model, out, class_names=["non_person", "person"])
    return model, out


def lce_logits(tflite, x):
    import larq_compute_engine as lce

    interp = lce.testing.Interpreter(tflite.read_bytes(), num_threads=1, use_reference_bconv=True)
    return np.concatenate([interp.predict(x[i:i + 1]) for i in range(len(x))])


def test_the_topology_is_read_from_the_flatbuffer(exported):
    _, out = exported
    cfg = recover.config_from_flatbuffer(out / "model.tflite")
    assert (cfg.stem_filters, cfg.width, cfg.levels, cfg.stem_kernel, cfg.stem_stride, cfg.stem_pool) == (32, 1.0, 4, 4, 4, True)
    assert cfg.blocks == (models.Block(128, 1, pool=True), models.Block(128, 2, pool=False))
    assert cfg.num_classes == 2 and cfg.pad_values == 1.0 and cfg.input_size == 32


def test_the_recovered_model_computes_what_the_flatbuffer_computes(exported, tmp_path):
    original, out = exported
    rebuilt = recover.from_flatbuffer(out)  # the folder; its model.tflite
    x = images()
    want = lce_logits(out / "model.tflite", x)
    got = rebuilt.predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(original.predict(x, verbose=0), want, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(rebuilt.get_layer("encoder").thresholds(),
                                  original.get_layer("encoder").thresholds())
    kernel = rebuilt.get_layer("block2_conv").kernel.numpy()
    np.testing.assert_array_equal(np.unique(kernel), np.float32([-recover.LATENT, recover.LATENT]))
    # Exported again, it converts to the same function.
    again = export.export_keras(rebuilt, tmp_path / "again")
    np.testing.assert_allclose(lce_logits(again.tflite, x), want, rtol=1e-5, atol=1e-4)


def test_init_from_an_export_starts_where_the_export_is(exported):
    from larq_glt.training import _init_from

    _, out = exported
    target = models.compact(CONFIG, glt_lr_multiplier=10.0)
    info = _init_from(target, out / "model.tflite")
    assert info["fresh"] == [] and "classifier" in info["copied"] and "encoder" in info["copied"]
    x = images(16, seed=2)
    np.testing.assert_allclose(target.predict(x, verbose=0), lce_logits(out / "model.tflite", x),
                               rtol=1e-5, atol=1e-4)


def test_a_flatbuffer_that_is_not_a_compact_model_is_refused_clearly(tmp_path, capsys):
    import tensorflow as tf
    import tf_keras as keras

    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    bad = tmp_path / "dense.tflite"
    bad.write_bytes(tf.lite.TFLiteConverter.from_keras_model(dense).convert())
    with pytest.raises(recover.RecoverError, match="not one uint8 image"):
        recover.from_flatbuffer(bad)
    with pytest.raises(runs.RunError, match="cannot rebuild a trained model from .*dense.tflite"):
        runs.load_model(bad)
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(runs.RunError, match="junk.tflite"):
        runs.load_model(tmp_path / "junk.tflite")
    args = ["--dataset", "synthetic", "--image-size", "32", "--limit", "32", "--epochs", "1", "--quiet",
            "--init-from", str(bad), "--out", str(tmp_path / "run")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot rebuild a trained model" in err[0], err


def test_calibration_gives_batch_statistics_and_keeps_the_function(exported):
    import tf_keras as keras

    _, out = exported
    model = recover.from_flatbuffer(out)
    x = images(64, seed=4)
    before = model.predict(x, verbose=0)
    recover.calibrate(model, x)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, rtol=1e-4, atol=1e-3)
    # In training mode (batch statistics) on the calibration batch it now computes the same.
    np.testing.assert_allclose(model(x, training=True).numpy(), before, rtol=1e-3, atol=2e-2)
    bn = model.get_layer("block1_bn")
    probe = keras.Model(model.inputs, bn.input)
    mean = probe(x, training=False).numpy().reshape(-1, bn.input.shape[-1]).mean(0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-3)


def test_spread_sample_takes_every_part_of_the_split():
    from larq_glt import data

    splits = data.load("synthetic", image_size=16, limit=100, seed=0)
    x, y = splits.arrays("train", limit=10, spread=True)
    full_x, full_y = splits.arrays("train")
    idx = np.unique(np.linspace(0, len(full_x) - 1, 10).astype(int))
    np.testing.assert_array_equal(x, full_x[idx])
    np.testing.assert_array_equal(y, full_y[idx])


@pytest.mark.slow
def test_a_run_starts_from_an_export_with_calibrated_batch_norms(exported, tmp_path):
    import json

    _, out = exported
    body = {"stem_filters": 16, "blocks": [{"filters": 64, "groups": 1, "pool": True},
                                           {"filters": 64, "groups": 2, "pool": False}]}
    args = ["--dataset", "synthetic", "--image-size", "32", "--limit", "64", "--batch-size", "32", "--levels", "4",
            "--width", "2", "--model-config", json.dumps(body), "--epochs", "1", "--quiet",
            "--init-from", str(out), "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["init_from"]["recovered_from_flatbuffer"] and "block2_conv" in metrics["init_from"]["copied"]


def test_calibration_needs_images(exported):
    _, out = exported
    with pytest.raises(ValueError, match="at least one image"):
        recover.calibrate(recover.from_flatbuffer(out), np.zeros((0, 32, 32, 3), np.uint8))


def test_shortcut_blocks_are_recovered(tmp_path):
    """A shortcut block converts to a float-output conv, ADD and LceQuantize: the
    rebuilt model has the block's shortcut and computes the flatbuffer's logits."""
    cfg = models.ModelConfig(input_size=32, levels=4, stem_filters=32, blocks=(
        models.Block(32, 1, pool=False, shortcut=True), models.Block(64, 1, pool=True),
        models.Block(64, 2, pool=False, shortcut=True)))
    model = testing.randomize(models.compact(cfg), seed=5)
    out = export.export_keras(model, tmp_path / "export").out_dir
    got_cfg = recover.config_from_flatbuffer(out / "model.tflite")
    assert [b.shortcut for b in got_cfg.blocks] == [True, False, True]
    assert [b.pool for b in got_cfg.blocks] == [False, True, False]
    x = images()
    want = lce_logits(out / "model.tflite", x)
    np.testing.assert_allclose(recover.from_flatbuffer(out).predict(x, verbose=0), want, rtol=1e-5, atol=1e-4)


def test_shuffled_blocks_are_recovered(tmp_path):
    """A shuffled block converts to a float-output conv, a float pool, GATHER and
    LceQuantize: the rebuilt model has the block's shuffle and computes the
    flatbuffer's logits."""
    cfg = models.ModelConfig(input_size=32, levels=4, stem_filters=32, blocks=(
        models.Block(64, 1, pool=True), models.Block(128, 2, pool=True, shuffle=True),
        models.Block(128, 4, pool=False, shuffle=True), models.Block(64, 2, pool=False)))
    model = testing.randomize(models.compact(cfg), seed=6)
    out = export.export_keras(model, tmp_path / "export").out_dir
    got_cfg = recover.config_from_flatbuffer(out / "model.tflite")
    assert [b.shuffle for b in got_cfg.blocks] == [False, True, True, False]
    assert [b.pool for b in got_cfg.blocks] == [True, True, False, False]
    x = images()
    want = lce_logits(out / "model.tflite", x)
    np.testing.assert_allclose(recover.from_flatbuffer(out).predict(x, verbose=0), want, rtol=1e-5, atol=1e-4)
