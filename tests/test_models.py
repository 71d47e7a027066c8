import numpy as np
import pytest

import larq_glt  # noqa: F401
import larq as lq
import tf_keras as keras

from larq_glt import models, summary
from larq_glt.models import Block, ModelConfig, ModelConfigError


def test_default_model_is_fully_binarized():
    model = models.compact()
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 6
    for conv in convs:
        assert isinstance(conv, lq.layers.QuantConv2D), conv.name
        assert conv.input_quantizer is not None and conv.kernel_quantizer is not None, conv.name
    assert model.input.dtype == "uint8"
    assert model.output_shape == (None, 2)
    cost = summary.model_cost(model)
    assert cost["total"]["other_macs"] == 0
    assert cost["total"]["binary_macs"] > 1_000_000


def test_float_encoding_has_full_precision_stem():
    model = models.compact(encoding="float")
    stem = model.get_layer("stem_conv")
    assert not isinstance(stem, lq.layers.QuantConv2D)
    assert summary.model_cost(model)["total"]["other_macs"] > 0


@pytest.mark.parametrize("groups", [3, 4])
def test_group_size_check_is_clear(groups):
    # 96 input channels: 3 groups -> 32 each is fine; 4 groups -> 24 each is not.
    cfg = ModelConfig(stem_filters=96, blocks=(Block(96, groups=groups),))
    if groups == 3:
        models.compact(cfg)
        return
    with pytest.raises(ModelConfigError, match=r"block1_conv.*24 input channels per group.*multiple of 32"):
        models.compact(cfg)


def test_indivisible_groups_are_refused():
    with pytest.raises(ModelConfigError, match="cannot be split"):
        models.compact(ModelConfig(stem_filters=64, blocks=(Block(64, groups=3),)))


def test_parameters_shape_the_model():
    cfg = ModelConfig(input_size=32, num_classes=10, stem_kernel=2, stem_stride=2,
                      blocks=(Block(64, 2, pool=True), Block(64, 1, pool=False)), width=2.0, levels=4)
    model = models.compact(cfg)
    assert model.output_shape == (None, 10)
    assert model.get_layer("encoder").output_shape[-1] == 12
    assert model.get_layer("block1_conv").filters == 128
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert model(x).shape == (2, 10)


def test_config_round_trip():
    cfg = ModelConfig(width=0.5, blocks=(Block(64, 2),))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ModelConfigError, match="unknown model config keys"):
        ModelConfig.from_dict({"widht": 2})


def test_summary_counts_bits():
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_filters=32, blocks=(), levels=8)
    model = models.compact(cfg)
    cost = summary.model_cost(model)
    rows = {r["layer"]: r for r in cost["layers"]}
    assert rows["stem_conv"]["weight_bits"] == 2 * 2 * 24 * 32
    assert rows["stem_conv"]["binary_macs"] == 2 * 2 * 24 * 32 * 8 * 8  # 16x16 input, stride 2 -> 8x8 outputs
    assert rows["encoder"]["weight_bits"] == 3 * 8 * 8


def test_shortcut_adds_the_binarized_input_at_no_weight_bit():
    blocks = (Block(32, pool=False), Block(32, pool=True, shortcut=True))
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_filters=32, blocks=blocks)
    plain = models.compact(cfg, blocks=(blocks[0], Block(32, pool=True)))
    model = models.compact(cfg)
    assert summary.model_cost(model)["total"] == summary.model_cost(plain)["total"]
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    # The sum is BN(conv(sign x)) + sign x: with the block's BN output zeroed
    # (gamma = beta = 0), the block passes its input's signs through.
    bn = model.get_layer("block2_bn")
    bn.set_weights([np.zeros_like(w) if i < 2 else w for i, w in enumerate(bn.get_weights())])
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    probe = keras.Model(model.input, [model.get_layer("block1_bn").output, model.get_layer("block2_add").output])
    before, after = (t.numpy() for t in probe(x, training=False))
    np.testing.assert_array_equal(after, np.where(before >= 0, 1.0, -1.0))


def test_shortcut_needs_matching_channels():
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_filters=32,
                      blocks=(Block(64, pool=False, shortcut=True),))
    assert "shortcut" in models.topology_problem(cfg)
    with pytest.raises(ModelConfigError, match="shortcut needs as many filters as input channels"):
        models.compact(cfg)
