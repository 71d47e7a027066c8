"""Growing a trained model: inserted shortcut blocks start as the identity."""
import numpy as np
import pytest

import larq_glt  # noqa: F401
from larq_glt import grow, models
from larq_glt.training import TrainingError, _init_from

CFG = dict(input_size=32, num_classes=2, stem_filters=32, levels=4)
TRAINED = (models.Block(64, 1), models.Block(64, 2, pool=False))


def _trained(tmp_path, blocks=TRAINED):
    source = models.compact(models.ModelConfig(**CFG, blocks=blocks))
    rng = np.random.default_rng(0)
    for w in source.weights:  # far from the initialisation, BN statistics included
        noise = rng.normal(size=w.shape) * 0.3
        w.assign((1.0 + np.abs(noise) if "variance" in w.name else noise).astype(np.float32))
    source.save(tmp_path / "src.keras")
    return source


def _images(n=16):
    return np.random.default_rng(1).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("where", [0, 1, 2])
def test_inserted_shortcut_blocks_leave_the_function_unchanged(tmp_path, where):
    source = _trained(tmp_path)
    blocks = list(TRAINED)
    width = 32 if where == 0 else 64  # the stem's 32 channels, then the blocks' 64
    blocks.insert(where, models.Block(width, groups=1 if where == 0 else 2, pool=False, shortcut=True))
    target = models.compact(models.ModelConfig(**CFG, blocks=tuple(blocks)))
    info = _init_from(target, tmp_path / "src.keras")
    assert info["grown"] == [f"block{where + 1}"]
    assert info["fresh"] == []
    x = _images()
    want = source(x, training=False).numpy()
    assert np.all(np.isfinite(want)) and np.ptp(want[:, 1]) > 0  # a real function of the image
    np.testing.assert_array_equal(target(x, training=False).numpy(), want)
    # the renumbered blocks carry the trained weights
    moved = "block3_conv" if where < 2 else "block2_conv"
    np.testing.assert_array_equal(target.get_layer(moved).get_weights()[0],
                                  source.get_layer("block2_conv").get_weights()[0])


def test_an_inserted_shortcut_block_learns(tmp_path):
    """Zero gamma still passes gradient to the batch norm, so training moves it."""
    import tensorflow as tf

    _trained(tmp_path)
    blocks = (TRAINED[0], models.Block(64, groups=2, pool=False, shortcut=True), TRAINED[1])
    target = models.compact(models.ModelConfig(**CFG, blocks=blocks))
    _init_from(target, tmp_path / "src.keras")
    gamma = target.get_layer("block2_bn").gamma
    with tf.GradientTape() as tape:
        # not a plain sum: the batch-normed logits of a batch sum to a constant
        logits = target(_images(), training=True)
        loss = tf.reduce_sum(logits[:, 1] * tf.range(16, dtype=tf.float32))
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, gamma)))) > 0.0


def test_only_shortcut_blocks_can_be_inserted(tmp_path):
    _trained(tmp_path)
    plain = (TRAINED[0], models.Block(64, groups=1, pool=False), TRAINED[1])
    with pytest.raises(TrainingError, match="block3 has no counterpart .* the only kind that can be inserted"):
        _init_from(models.compact(models.ModelConfig(**CFG, blocks=plain)), tmp_path / "src.keras")
    extra = (*TRAINED, models.Block(64, groups=2, pool=False))
    with pytest.raises(TrainingError, match="block3 has no counterpart .* not a shortcut block"):
        _init_from(models.compact(models.ModelConfig(**CFG, blocks=extra)), tmp_path / "src.keras")
    fewer = TRAINED[:1]
    with pytest.raises(TrainingError, match="block2 found no place"):
        _init_from(models.compact(models.ModelConfig(**CFG, blocks=fewer)), tmp_path / "src.keras")


def test_align_matches_a_trained_shortcut_block_before_inserting(tmp_path):
    """A trained shortcut block keeps its weights; an identical one after it is the new one."""
    trained = (TRAINED[0], models.Block(64, groups=2, pool=False, shortcut=True), TRAINED[1])
    source = _trained(tmp_path, trained)
    blocks = (TRAINED[0], trained[1], models.Block(64, groups=2, pool=False, shortcut=True), TRAINED[1])
    target = models.compact(models.ModelConfig(**CFG, blocks=blocks))
    names, new = grow.align(target, source)
    assert new == ["block3"] and names["block2_conv"] == "block2_conv" and names["block4_conv"] == "block3_conv"
    _init_from(target, tmp_path / "src.keras")
    x = _images()
    np.testing.assert_array_equal(target(x, training=False).numpy(), source(x, training=False).numpy())
