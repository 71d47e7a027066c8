"""The GLT thresholds' gradient from a sample of each batch.

GLT learns 24 thresholds, yet their gradient costs a training step as much as
the rest of the input side: the stem convolution's gradient with respect to
its input planes (a full-resolution transposed convolution) and the surrogate
over every plane. Both sum over the batch into those few numbers, so the
first ``k`` images of a (shuffled) batch, scaled by ``batch / k``, give an
unbiased estimate of it for a ``k / batch`` share of the cost.

:class:`SampledInputGradConv2D` is the stem: a ``QuantConv2D`` whose forward
pass is unchanged and whose kernel gradient comes from the whole batch, but
whose input gradient is ``batch / k`` times the true one on the first ``k``
images and zero on the others. The GLT encoder, told the same ``k``
(``GLT(grad_images=k)``), skips the surrogate on the rows that receive zero.
``models.compact`` sets both from ``ModelConfig.glt_grad_images``; at
inference (and so in the exported flatbuffer) the layer is a plain
``QuantConv2D``.

```python
from larq_glt import models
model = models.compact(width=2, glt_grad_images=8)   # batches of 64: 1/8 of the cost
```
"""
from __future__ import annotations

import larq_glt  # noqa: F401
import larq as lq
import tensorflow as tf
import tf_keras as keras
from larq import context, utils

__all__ = ["SampledInputGradConv2D"]


@keras.utils.register_keras_serializable(package="larq_glt", name="SampledInputGradConv2D")
class SampledInputGradConv2D(lq.layers.QuantConv2D):
    """``QuantConv2D`` whose input gradient is estimated from ``grad_images``
    images of each batch (0: every image, the plain layer)."""

    def __init__(self, *args, grad_images: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if int(grad_images) < 0:
            raise ValueError(f"grad_images must be 0 or more, got {grad_images}")
        if int(grad_images) and (self.use_bias or self.activation is not keras.activations.linear):
            raise ValueError("grad_images needs a convolution without bias and activation")
        self.grad_images = int(grad_images)

    def _conv_fixed_kernel(self, x):
        """The layer's output on ``x`` with no gradient to its kernel."""
        if self.input_quantizer:
            x = self.input_quantizer(x)
        with context.quantized_scope(True):
            kernel = tf.stop_gradient(tf.convert_to_tensor(self.kernel))
        if self._is_native_padding:
            return self.convolution_op(x, kernel)
        x = tf.pad(x, self._get_padding_same(x), constant_values=self.pad_values)
        with utils.patch_object(self, "padding", "valid"):
            return self.convolution_op(x, kernel)

    def call(self, inputs, training=None):
        if not training or not self.grad_images:
            return super().call(inputs)
        full = super().call(tf.stop_gradient(inputs))  # the output, and the kernel's gradient
        n = tf.shape(inputs)[0]
        sample = inputs[: self.grad_images]
        k = tf.shape(sample)[0]
        tap = self._conv_fixed_kernel(sample)
        # zero in value; its gradient is the input gradient of the sample, scaled to the batch
        tap = (tap - tf.stop_gradient(tap)) * (tf.cast(n, tap.dtype) / tf.cast(k, tap.dtype))
        return full + tf.pad(tap, [[0, n - k], [0, 0], [0, 0], [0, 0]])

    def get_config(self):
        return {**super().get_config(), "grad_images": self.grad_images}
