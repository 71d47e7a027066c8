"""Word shuffle: let consecutive grouped convolutions mix their groups.

A grouped convolution reads a contiguous slice of its input channels per
group. When the next block has as many groups or more, each of its groups
reads the output of a single group of the block before: after the first
grouped block the network splits into independent towers that meet only at
the classifier. ShuffleNet's channel shuffle interleaves the groups' outputs
so that every group of the next block reads all groups of this one.

Here the shuffle moves whole 32-channel words, the unit LCE bit-packs
channels in: on a microcontroller it is a copy of a few words per pixel
(or none, when the convolution writes its words in shuffled order), never a
bit permutation. With ``g`` groups of ``w`` words each, word ``i·w + j`` of
the input goes to position ``j·g + i`` (ShuffleNet's reshape-transpose on
words).

```python
from larq_glt import shuffle
shuffle.word_permutation(channels=256, groups=2)   # channel order, as a list
layer = shuffle.WordShuffle(groups=2)              # the Keras layer
```
"""
from __future__ import annotations

import larq_glt  # noqa: F401
import numpy as np
import tensorflow as tf
import tf_keras as keras

__all__ = ["WORD", "word_order", "word_permutation", "WordShuffle", "ShuffleError"]

#: Channels per bit-packed word (LCE's int32 packing).
WORD = 32


class ShuffleError(ValueError):
    """A shuffle that does not move whole words between groups."""


def word_order(words: int, groups: int) -> list[int]:
    """Source word of each output word: output ``j·g + i`` is input ``i·w + j``."""
    if groups < 2 or words < groups or words % groups:
        raise ShuffleError(f"cannot shuffle {words} words across {groups} groups: "
                           "needs at least 2 groups of whole words")
    per_group = words // groups
    return [i * per_group + j for j in range(per_group) for i in range(groups)]


def word_permutation(channels: int, groups: int) -> list[int]:
    """Source channel of each output channel (whole 32-channel words moved)."""
    if channels % WORD:
        raise ShuffleError(f"cannot shuffle {channels} channels in {WORD}-channel words")
    order = word_order(channels // WORD, groups)
    return [w * WORD + b for w in order for b in range(WORD)]


@keras.utils.register_keras_serializable(package="larq_glt", name="WordShuffle")
class WordShuffle(keras.layers.Layer):
    """Reorder the last axis by :func:`word_permutation` (no weights).

    It commutes with the sign a binary convolution takes of its input, with
    max pooling and with anything else per channel, so it may sit anywhere
    between two blocks.
    """

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        self._order = tf.constant(np.array(word_permutation(int(input_shape[-1]), self.groups), np.int32))
        super().build(input_shape)

    def call(self, x):
        return tf.gather(x, self._order, axis=-1)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}
