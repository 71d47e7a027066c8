"""Helpers for tests and benchmarks: models with non-trivial parameters without
training them.

A freshly built model has batch-norm statistics of 1 and 0, which makes every
LCE threshold and multiplier the same; exactness tests of the converter and
the kernels need varied ones (both signs of gamma included).

```python
from larq_glt import models, testing
model = testing.randomize(models.compact(), seed=0)
```
"""
from __future__ import annotations

import numpy as np

__all__ = ["randomize"]


def randomize(model, seed: int = 0):
    """Random batch-norm parameters and statistics (negative gammas included)
    and random GLT threshold logits; returns the model."""
    import tf_keras as keras

    from larq_glt import encoders

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, g.shape) * rng.choice([-1, 1], g.shape),
                rng.normal(0, 1, b.shape), rng.normal(0, 2, m.shape), rng.uniform(0.5, 2, v.shape),
            ])
        if isinstance(layer, encoders.GLT):
            layer.logits.assign(rng.normal(0, 1, layer.logits.shape))
    return model
