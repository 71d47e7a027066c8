"""Grow a trained model by inserting shortcut blocks that start as the identity.

A shortcut block computes ``BN(conv(sign x)) + sign x``. With the batch norm's
gamma and beta at zero it outputs ``sign x``, which the next layer binarizes
to exactly what it read before: inserting such blocks into a trained network
(``--init-from`` with a ``--model-config`` that has more shortcut blocks)
leaves its function unchanged, frame for frame, and training then decides
what the new blocks do. It adds depth where a trained model has stopped
improving, without starting again from scratch (and without a weight bit
beyond the new convolutions').

:func:`align` pairs the blocks of the model being built with those of the
trained one, in order: a block takes the next trained block when their
convolutions have the same shape and both are (or are not) shortcut blocks;
otherwise a shortcut block is new, and any other block takes the next
trained one anyway, so that the caller reports how their weights differ.
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ["GrowError", "align", "make_identity"]

_BLOCK = re.compile(r"^block(\d+)_conv$")


class GrowError(ValueError):
    """The two models differ by more than inserted shortcut blocks."""


def _blocks(model) -> list[str]:
    """``block<i>`` prefixes in order."""
    found = sorted(int(m.group(1)) for m in (_BLOCK.match(l.name) for l in model.layers) if m)
    return [f"block{i}" for i in found]


def _has(model, name: str) -> bool:
    try:
        model.get_layer(name)
        return True
    except ValueError:
        return False


def _signature(model, block: str):
    return ([tuple(w.shape) for w in model.get_layer(f"{block}_conv").weights], _has(model, f"{block}_add"))


def align(target, source) -> tuple[dict[str, str], list[str]]:
    """``(names, new)``: for every layer of ``target`` that takes the weights
    of a ``source`` layer, its source name (blocks renumbered by insertion);
    and the prefixes of the target's inserted shortcut blocks."""
    src, tgt = _blocks(source), _blocks(target)
    names, new, j = {}, [], 0
    for block in tgt:
        same = j < len(src) and _signature(target, block) == _signature(source, src[j])
        if not same and _has(target, f"{block}_add"):
            new.append(block)
        elif j < len(src):
            # the same block, or one that differs (the caller's shape check says how)
            for suffix in ("_conv", "_bn"):
                names[block + suffix] = src[j] + suffix
            j += 1
        else:
            raise GrowError(f"{block} has no counterpart in the trained model ({len(src)} blocks) and is not a "
                            f"shortcut block, the only kind that can be inserted")
    if j < len(src):
        raise GrowError(f"the trained model's {', '.join(src[j:])} found no place in the new model")
    for layer in target.layers:
        if layer.weights and not layer.name.startswith("block"):
            names[layer.name] = layer.name
    return names, new


def make_identity(model, block: str) -> None:
    """Zero the batch norm of shortcut block ``block``: it then outputs the
    signs of its input (its convolution keeps its fresh initialisation)."""
    bn = model.get_layer(f"{block}_bn")
    n = bn.gamma.shape[0]
    bn.set_weights([np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32),
                    np.ones(n, np.float32)])
