import math

import numpy as np
import pytest

import larq_glt  # noqa: F401
import tensorflow as tf

from larq_glt import models, pruning, summary
from larq_glt.models import Block, ModelConfig
from larq_glt.pruning import PruningError

# Every producer has two 32-channel blocks per cell (stem -> block1: 1 cell of
# 64; block1 -> block2: 2 cells of 64; block2 (2 groups) -> classifier: 2 cells of 64).
SMALL = ModelConfig(input_size=32, num_classes=4, stem_filters=64, stem_pool=False, levels=4,
                    blocks=(Block(128, 1, pool=True), Block(128, 2, pool=False)))


def _sign(a):
    return np.where(a >= 0, 1.0, -1.0)


def masked_bconv_reference(x, w, mask, groups, pad_value=1.0):
    """NumPy: 'same' stride-1 grouped binary conv, padded with pad_value after
    the sign, where input channel c contributes only when mask[c] == 1."""
    kh, kw, cin_g, cout = w.shape
    b, h, wd, _ = x.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(_sign(x), ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)), constant_values=pad_value)
    ws = _sign(w)
    out = np.zeros((b, h, wd, cout))
    cout_g = cout // groups
    for o in range(cout):
        g = o // cout_g
        for j in range(cin_g):
            c = g * cin_g + j
            if not mask[c]:
                continue
            for a in range(kh):
                for d in range(kw):
                    out[..., o] += xp[:, a:a + h, d:d + wd, c] * ws[a, d, j, o]
    return out


def _randomize(model, seed=0):
    """Random latent kernels (exact zeros included: sign(0) = +1) and batch-norm
    statistics of both signs, so every channel matters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                (rng.uniform(0.2, 2.0, n) * rng.choice([-1.0, 1.0], n)).astype(np.float32),
                rng.normal(0, 3, n).astype(np.float32),
                rng.normal(0, 4, n).astype(np.float32),
                rng.uniform(0.5, 20, n).astype(np.float32),
            ])
        elif isinstance(layer, tf.keras.layers.Conv2D):
            k = rng.uniform(-1, 1, layer.kernel.shape).astype(np.float32)
            k[rng.random(k.shape) < 0.05] = 0.0
            layer.kernel.assign(k)


def test_masked_layer_matches_numpy_reference():
    rng = np.random.default_rng(1)
    layer = pruning.MaskedQuantConv2D(
        6, 3, groups=2, padding="same", pad_values=1.0, input_quantizer="ste_sign",
        kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False,
    )
    layer.build((None, 5, 5, 64))
    w = rng.uniform(-1, 1, (3, 3, 32, 6)).astype(np.float32)
    w[rng.random(w.shape) < 0.1] = 0.0
    layer.kernel.assign(w)
    x = rng.normal(size=(2, 5, 5, 64)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = 0.0
    mask = np.ones(64, np.float32)
    mask[[0, 5, 31, 40, 63]] = 0.0
    # all ones first: plain binary conv semantics, then with channels masked
    np.testing.assert_array_equal(layer(x).numpy(), masked_bconv_reference(x, w, np.ones(64), 2))
    layer.channel_mask.assign(mask)
    got = layer(x).numpy()
    np.testing.assert_array_equal(got, masked_bconv_reference(x, w, mask, 2))
    assert not np.array_equal(got, masked_bconv_reference(x, w, np.ones(64), 2))


def test_masked_kernel_entries_get_no_gradient():
    layer = pruning.MaskedQuantConv2D(4, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                                      kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)
    layer.build((None, 4, 4, 64))
    layer.kernel.assign(np.full((3, 3, 64, 4), 0.1, np.float32))
    mask = np.ones(64, np.float32)
    mask[32:] = 0
    layer.channel_mask.assign(mask)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 4, 4, 64)), tf.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x) * tf.range(4, dtype=tf.float32))
    g = tape.gradient(y, layer.kernel.latent_variable).numpy()
    assert np.all(g[:, :, 32:] == 0) and np.any(g[:, :, :32] != 0)


@pytest.mark.parametrize(
    "cfg",
    [
        SMALL,
        # float first conv (the float encoding), four groups feeding the classifier
        ModelConfig(input_size=32, num_classes=3, encoding="float", stem_filters=128, stem_pool=True,
                    blocks=(Block(256, 2, pool=True), Block(256, 4, pool=False))),
    ],
    ids=["glt", "float-stem"],
)
def test_shrunk_model_equals_masked_model_exactly(cfg):
    base = models.compact(cfg)
    _randomize(base)
    masked = pruning.with_masks(base)
    x = np.random.default_rng(2).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    full = base(x).numpy()
    np.testing.assert_array_equal(masked(x).numpy(), full)  # all-ones masks change nothing

    plan = pruning.plan(cfg, 0.5)
    pruning.update_masks(masked, plan, 1.0)
    small, small_cfg, kept = pruning.shrink(masked, cfg, plan)
    for training in (False, True):
        np.testing.assert_array_equal(small(x, training=training).numpy(), masked(x, training=training).numpy())
    assert not np.array_equal(small(x).numpy(), full)  # the masks did remove something

    # physically smaller: each producer lost half its channels, bits and MACs shrank
    for lp in plan.layers:
        assert small.get_layer(lp.producer).filters == lp.channels // 2 == len(kept[lp.producer])
    before, after = summary.model_cost(base)["total"], summary.model_cost(small)["total"]
    assert after["weight_bits"] < 0.4 * before["weight_bits"]
    assert after["binary_macs"] < 0.4 * before["binary_macs"]
    assert small_cfg.width == 1.0 and not any(isinstance(l, pruning._InputMask) for l in small.layers)


@pytest.mark.parametrize("gp,gc,filters", [(1, 1, 128), (1, 4, 256), (2, 4, 256), (4, 2, 256), (2, 3, 384),
                                           (8, 1, 512), (3, 2, 384)])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_plan_keeps_groups_balanced_and_32_aligned(gp, gc, filters, ratio):
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_pool=False, stem_filters=96 * gp,
                      blocks=(Block(filters, gp, pool=False), Block(filters, gc, pool=False)))
    plan = pruning.plan(cfg, ratio)
    pruned = plan.pruned_config(cfg)
    small = models.compact(pruned)  # runs models.check_binary_groups on every conv
    channels = [pruned.stem_filters] + [b.filters for b in pruned.blocks]
    for b, cin in zip(pruned.blocks, channels):
        assert (cin // b.groups) % 32 == 0 or b.groups == 1
    lp = plan.layer("block1_conv")
    assert lp.cells == math.lcm(gp, gc)
    assert (lp.channels - lp.kept) % (lp.cells * 32) == 0  # whole blocks, the same number in every cell
    assert lp.kept > 0 and lp.kept % math.lcm(gp, gc) == 0
    assert small.get_layer("block1_conv").groups == gp and small.get_layer("block2_conv").groups == gc
    if ratio == 0:
        assert all(l.kept == l.channels for l in plan.layers)


def test_masks_remove_whole_blocks_evenly_in_every_cell():
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_pool=False, stem_filters=128,
                      blocks=(Block(512, 2, pool=False), Block(256, 4, pool=False)))
    model = pruning.with_masks(models.compact(cfg))
    _randomize(model, seed=3)
    plan = pruning.plan(cfg, 0.5)
    pruning.update_masks(model, plan, 1.0)
    mask = model.get_layer("block2_conv").channel_mask.numpy()  # block1's 512 outputs, 4 cells of 128
    blocks = mask.reshape(-1, 32)
    assert np.all((blocks == 0).all(axis=1) | (blocks == 1).all(axis=1))  # whole 32-channel words
    assert (blocks[:, 0].reshape(4, 4) == 0).sum(axis=1).tolist() == [2, 2, 2, 2]


def test_small_cells_are_not_pruned_and_the_plan_says_why():
    # default topology: block3 -> block4 has 8 consumer groups of 32 channels
    plan = pruning.plan(ModelConfig(), 0.75)
    lp = plan.layer("block3_conv")
    assert lp.kept == lp.channels and lp.blocks_per_cell == 1 and "keeps at least one" in lp.note
    assert plan.pruned_config(ModelConfig()) == ModelConfig(width=1.0)
    lp = pruning.plan(ModelConfig(), 0.5, block=64).layer("block3_conv")  # cells of 32 < one 64-block
    assert lp.kept == lp.channels and "not pruned" in lp.note and "multiple of the 64-channel block" in lp.note
    # the default topology is one block per cell everywhere: nothing to prune at width 1
    assert all(l.kept == l.channels for l in plan.layers)
    assert plan_at_width(2.0).layer("block3_conv").kept == 256  # width 2: 2 blocks per cell, one removed


def plan_at_width(width):
    return pruning.plan(ModelConfig(width=width), 0.5)


def test_criterion_removes_lowest_l1_blocks_first_and_masks_are_monotone():
    model = pruning.with_masks(models.compact(SMALL))
    consumer = model.get_layer("block1_conv")  # reads the stem's 64 channels, one cell of two blocks
    k = np.full(consumer.kernel.shape, 0.5, np.float32)
    k[:, :, 32:] = 0.01  # block 1 has the smaller latent L1 norm
    consumer.kernel.assign(k)
    plan = pruning.plan(SMALL, 0.5)
    pruning.update_masks(model, plan, 0.3)  # 0.3 of one block rounds to none
    assert consumer.channel_mask.numpy().min() == 1
    pruning.update_masks(model, plan, 1.0)
    np.testing.assert_array_equal(consumer.channel_mask.numpy(), np.r_[np.ones(32), np.zeros(32)])
    k[:, :, 32:] = 0.9  # now block 0 is weaker, but removed blocks stay removed
    consumer.kernel.assign(k)
    pruning.update_masks(model, plan, 1.0)
    np.testing.assert_array_equal(consumer.channel_mask.numpy(), np.r_[np.ones(32), np.zeros(32)])


def test_ramp_fraction_is_cubic_and_monotone():
    values = [pruning.ramp_fraction(e, 4) for e in range(5)]
    assert values[0] == 0 and values[-1] == 1.0
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[2] == pytest.approx(1 - 0.5**3)
    assert pruning.ramp_fraction(1, 0) == 1.0


def test_shrink_refuses_masks_off_target():
    model = pruning.with_masks(models.compact(SMALL))
    with pytest.raises(PruningError, match="update_masks"):
        pruning.shrink(model, SMALL, pruning.plan(SMALL, 0.5))


def test_bad_options_are_clear():
    with pytest.raises(PruningError, match="multiple of 32"):
        pruning.plan(SMALL, 0.5, block=16)
    with pytest.raises(PruningError, match=r"\[0, 1\)"):
        pruning.plan(SMALL, 1.0)
    with pytest.raises(PruningError, match="with_masks"):
        pruning.update_masks(models.compact(SMALL), pruning.plan(SMALL, 0.5), 1.0)


def test_larger_blocks_prune_in_larger_steps():
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_pool=False, stem_filters=256,
                      blocks=(Block(256, 1, pool=False),))
    assert pruning.plan(cfg, 0.25, block=32).layer("stem_conv").kept == 192
    assert pruning.plan(cfg, 0.25, block=64).layer("stem_conv").kept == 192
    assert pruning.plan(cfg, 0.25, block=128).layer("stem_conv").kept == 256  # half a block: ties prune less
    assert pruning.plan(cfg, 0.3, block=128).layer("stem_conv").kept == 128


def test_shrunk_model_converts_to_a_smaller_fully_binary_flatbuffer():
    lce = pytest.importorskip("larq_compute_engine")
    tflite = pytest.importorskip("tflite")
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    base = models.compact(SMALL)
    _randomize(base, seed=4)
    masked = pruning.with_masks(base)
    plan = pruning.plan(SMALL, 0.5)
    pruning.update_masks(masked, plan, 1.0)
    small, _, _ = pruning.shrink(masked, SMALL, plan)
    fb_base, fb_small = lce.convert_keras_model(base), lce.convert_keras_model(small)

    def ops(buf):
        m = tflite.Model.GetRootAsModel(buf, 0)
        codes = [m.OperatorCodes(i).CustomCode() for i in range(m.OperatorCodesLength())]
        g = m.Subgraphs(0)
        return [codes[g.Operators(i).OpcodeIndex()] for i in range(g.OperatorsLength())]

    assert ops(fb_small) == ops(fb_base) and ops(fb_small).count(b"LceBconv2d") == 4  # no float fallback
    saved_bits = summary.model_cost(base)["total"]["binary_weights"] - summary.model_cost(small)["total"]["binary_weights"]
    assert len(fb_base) - len(fb_small) >= saved_bits // 8  # the packed kernels really shrank
    x = np.random.default_rng(5).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    got = Interpreter(fb_small, num_threads=1, use_reference_bconv=True).predict(x)
    np.testing.assert_allclose(got, small(x).numpy(), rtol=1e-4, atol=1e-3)


def test_size_table_lists_every_layer_before_and_after():
    base = models.compact(SMALL)
    masked = pruning.with_masks(base)
    plan = pruning.plan(SMALL, 0.5)
    pruning.update_masks(masked, plan, 1.0)
    small, _, _ = pruning.shrink(masked, SMALL, plan)
    text = pruning.format_size_table(summary.model_cost(base), summary.model_cost(small))
    assert "bits before" in text and "MACs after" in text
    for name in ("stem_conv", "block1_conv", "block2_conv", "classifier"):
        assert name in text
    assert f"{summary.model_cost(small)['total']['weight_bits']:,}" in text
