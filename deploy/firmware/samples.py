"""Sample frames: public-domain photographs shipped inside scikit-image,
loaded at run time (nothing is copied into this repository).

Two with a person (``astronaut``: Eileen Collins, NASA; ``camera``: the
cameraman) and two without (``coffee``; ``chelsea``, a cat). Labels follow the
VWW convention (``person`` = 1, ``non_person`` = 0).

```python
from deploy.firmware import samples
frames, labels, names = samples.load((96, 96, 3))
```
"""
from __future__ import annotations

import numpy as np

__all__ = ["SAMPLES", "load", "fit"]

#: (scikit-image loader name, VWW label)
SAMPLES = (("astronaut", 1), ("coffee", 0), ("camera", 1), ("chelsea", 0))


def fit(image: np.ndarray, shape) -> np.ndarray:
    """Centre-crop to a square, resize bilinearly, convert to the channel count."""
    from PIL import Image

    h, w, c = shape
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = img[..., :3]
    side = min(img.shape[:2])
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    pil = Image.fromarray(img[top:top + side, left:left + side].astype(np.uint8)).resize((w, h), Image.BILINEAR)
    out = np.asarray(pil, dtype=np.uint8)
    if c == 1:
        out = np.asarray(pil.convert("L"), dtype=np.uint8)[..., None]
    return out


def load(shape=(96, 96, 3)):
    """``(frames uint8 [4, H, W, C], labels [4], names [4])``."""
    try:
        from skimage import data
    except ImportError as e:
        raise RuntimeError("the sample photos come from scikit-image: pip install scikit-image") from e
    frames, labels, names = [], [], []
    for name, label in SAMPLES:
        frames.append(fit(getattr(data, name)(), shape))
        labels.append(label)
        names.append(name)
    return np.stack(frames), np.array(labels), names
