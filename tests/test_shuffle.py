"""Word shuffle (larq_glt.shuffle): the permutation, the Keras layer, the blocks
that carry it, and the flatbuffer pattern the runtime fuses (opset.word_shuffles)."""
from __future__ import annotations

import numpy as np
import pytest

import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
import tf_keras as keras

from larq_glt import models, opset, shuffle, summary
from larq_glt.models import Block, ModelConfig, ModelConfigError


def test_word_order_interleaves_the_groups():
    # 2 groups of 4 words: each later group of 2 words reads one word of each
    assert shuffle.word_order(8, 2) == [0, 4, 1, 5, 2, 6, 3, 7]
    assert shuffle.word_order(6, 3) == [0, 2, 4, 1, 3, 5]
    order = shuffle.word_order(16, 4)
    assert sorted(order) == list(range(16))
    # the next block with 8 groups of 2 words: each group reads 2 different source groups
    for g in range(8):
        assert len({w // 4 for w in order[2 * g:2 * g + 2]}) == 2


def test_word_permutation_moves_whole_words():
    perm = shuffle.word_permutation(128, 2)
    assert perm[:32] == list(range(32)) and perm[32:64] == list(range(64, 96))
    assert sorted(perm) == list(range(128))


@pytest.mark.parametrize("words, groups", [(8, 1), (6, 4), (0, 2)])
def test_word_order_refuses_what_is_not_whole_groups(words, groups):
    with pytest.raises(shuffle.ShuffleError, match="cannot shuffle"):
        shuffle.word_order(words, groups)


def test_word_permutation_refuses_partial_words():
    with pytest.raises(shuffle.ShuffleError, match="32-channel words"):
        shuffle.word_permutation(48, 2)


def test_layer_gathers_the_channels_and_round_trips_its_config():
    layer = shuffle.WordShuffle(2, name="s")
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 128)).astype(np.float32)
    np.testing.assert_array_equal(layer(x).numpy(), x[..., shuffle.word_permutation(128, 2)])
    again = shuffle.WordShuffle.from_config(layer.get_config())
    assert again.groups == 2 and again.name == "s"


def test_a_shuffled_block_costs_no_weight_bit_and_saves_with_the_model(tmp_path):
    blocks = (Block(64, 1), Block(128, 2, pool=False, shuffle=True), Block(128, 4, pool=False))
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_filters=32, blocks=blocks)
    model = models.compact(cfg)
    plain = models.compact(cfg, blocks=(blocks[0], Block(128, 2, pool=False), blocks[2]))
    assert summary.model_cost(model)["total"] == summary.model_cost(plain)["total"]
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    x = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "m.keras"
    model.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path)(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("block", [Block(64, 1, shuffle=True), Block(96, 2, shuffle=True)])
def test_a_shuffle_needs_groups_of_whole_words(block):
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, stem_filters=64, blocks=(block,))
    assert "shuffle needs 2 or more groups" in models.topology_problem(cfg)
    with pytest.raises(ModelConfigError, match="shuffle needs 2 or more groups"):
        models.compact(cfg)


class _Op:
    def __init__(self, index, opcode, inputs, outputs, builtin_options=None, custom_options=None):
        self.index, self.opcode, self.inputs, self.outputs = index, opcode, inputs, outputs
        self.builtin_options, self.custom_options = builtin_options or {}, custom_options or {}


class _Tensor:
    def __init__(self, type_name, shape, data=None):
        self.type_name, self.shape, self.data = type_name, shape, data


class _Model:
    """Just enough of larq_glt.flatbuffer.Model for opset's pattern search."""

    def __init__(self, index):
        self.tensors = [_Tensor("INT32", (1, 3, 3, 2)), _Tensor("FLOAT32", (1, 3, 3, 64)),
                        _Tensor("INT32", (64,), np.asarray(index, np.int32)), _Tensor("FLOAT32", (1, 3, 3, 64)),
                        _Tensor("INT32", (1, 3, 3, 2))]
        self.operators = [_Op(0, "LceBconv2d", [0], [1], custom_options={"pad_values": 1, "padding": 0}),
                          _Op(1, "GATHER", [1, 2], [3], {"axis": -1, "batch_dims": 0}),
                          _Op(2, "LceQuantize", [3], [4])]
        self.inputs, self.outputs = [0], [4]

    def producer(self, t):
        return next((op for op in self.operators if t in op.outputs), None)

    def consumers(self, t):
        return [op for op in self.operators if t in op.inputs]


def test_the_runtime_fuses_only_gathers_of_whole_words():
    words = _Model(np.r_[np.arange(32, 64), np.arange(32)])
    assert [s.order for s in opset.word_shuffles(words)] == [(1, 0)]
    assert opset.unsupported_ops(words) == []
    bits = _Model(np.r_[np.arange(1, 64), 0])  # a rotation by one channel: a bit permutation
    assert opset.word_shuffles(bits) == []
    assert [op.opcode for op in opset.unsupported_ops(bits)] == ["GATHER"]
