"""GLT thresholds' gradient from a sample of each batch (larq_glt.sampled_gradient):
the same function, the same weight gradients, the threshold gradient of the
first k images scaled to the batch, and the same exported flatbuffer."""
from __future__ import annotations

import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from larq_glt import models
from larq_glt.models import Block, ModelConfig, ModelConfigError
from larq_glt.sampled_gradient import SampledInputGradConv2D

CFG = ModelConfig(input_size=32, stem_filters=32, levels=4, blocks=(Block(64, 1), Block(64, 2, pool=False)),
                  num_classes=3)
BATCH, K = 8, 2


def _pair(k=K, seed=0):
    plain = models.compact(CFG)
    sampled = models.compact(CFG, glt_grad_images=k)
    sampled.set_weights(plain.get_weights())
    x = np.random.default_rng(seed).integers(0, 256, (BATCH, 32, 32, 3), dtype=np.uint8)
    y = np.arange(BATCH) % 3
    return plain, sampled, x, y


def _grads(model, x, y, rows_with_planes_gradient=None):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        if rows_with_planes_gradient is None:
            logits = model(x, training=True)
        else:  # the plain model, the planes of the later rows cut from the thresholds
            planes = model.get_layer("encoder")(x)
            k = rows_with_planes_gradient
            planes = tf.concat([planes[:k], tf.stop_gradient(planes[k:])], axis=0)
            rest = keras.Model(model.get_layer("stem_conv").input, model.output)
            logits = rest(planes, training=True)
        loss = loss_fn(y, logits)
    return logits, dict(zip([v.name for v in model.trainable_variables],
                            tape.gradient(loss, model.trainable_variables)))


def test_same_function_and_weight_gradients_and_a_scaled_sample_of_the_threshold_gradient():
    plain, sampled, x, y = _pair()
    logits, want = _grads(plain, x, y)
    got_logits, got = _grads(sampled, x, y)
    np.testing.assert_array_equal(got_logits.numpy(), logits.numpy())
    thresholds = [n for n in want if "gap_logits" in n]
    assert len(thresholds) == 1
    for name in want:
        if name not in thresholds:
            np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    _, sample = _grads(plain, x, y, rows_with_planes_gradient=K)
    t = thresholds[0]
    np.testing.assert_allclose(got[t].numpy(), BATCH / K * sample[t].numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(got[t].numpy() - want[t].numpy()).max() > 0  # a sample, not the whole batch


def test_a_sample_of_the_whole_batch_is_the_plain_gradient():
    plain, sampled, x, y = _pair(k=BATCH, seed=1)
    (_, want), (_, got) = _grads(plain, x, y), _grads(sampled, x, y)
    for name in want:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_inference_and_export_are_the_plain_models(tmp_path):
    from larq_glt import export, flatbuffer, testing

    plain, sampled, x, _ = _pair()
    testing.randomize(plain, seed=2)
    sampled.set_weights(plain.get_weights())
    np.testing.assert_array_equal(sampled(x, training=False).numpy(), plain(x, training=False).numpy())
    a = flatbuffer.read_model(export.export_keras(plain, tmp_path / "plain", n_check=4).tflite)
    b = flatbuffer.read_model(export.export_keras(sampled, tmp_path / "sampled", n_check=4).tflite)
    # the same ops on the same constants (tensor names carry each model's own name)
    assert [(op.opcode, op.inputs, op.outputs) for op in a.operators] == \
        [(op.opcode, op.inputs, op.outputs) for op in b.operators]
    for ta, tb in zip(a.tensors, b.tensors):
        assert ta.type_name == tb.type_name and list(ta.shape) == list(tb.shape)
        assert (ta.data is None) == (tb.data is None)
        if ta.data is not None:
            np.testing.assert_array_equal(ta.data, tb.data)


def test_saves_and_trains(tmp_path):
    _, sampled, x, y = _pair()
    sampled.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = sampled.get_layer("encoder").get_weights()[0].copy()
    sampled.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    assert not np.array_equal(before, sampled.get_layer("encoder").get_weights()[0])
    path = tmp_path / "m.keras"
    sampled.save(path)
    again = keras.models.load_model(path)
    assert again.get_layer("stem_conv").grad_images == K and again.get_layer("encoder").grad_images == K
    np.testing.assert_array_equal(again(x).numpy(), sampled(x).numpy())


@pytest.mark.parametrize("change", [dict(encoding="thermo"), dict(precision="float"), dict(glt_grad_images=-1)])
def test_refused_where_there_is_no_glt_stem(change):
    with pytest.raises(ModelConfigError, match="glt_grad_images"):
        models.compact(CFG, **{"glt_grad_images": 4, **change})


def test_layer_needs_no_bias_and_no_activation():
    with pytest.raises(ValueError, match="without bias and activation"):
        SampledInputGradConv2D(8, 3, grad_images=2, use_bias=True)
