"""Static activation-arena planning: tensors whose lifetimes do not overlap
share memory.

Each activation tensor lives from the op that writes it to the last op that
reads it. The planner places tensors largest first, each at the lowest offset
where it overlaps (in time) no tensor already placed — the greedy-by-size
scheme TFLite Micro's ``GreedyMemoryPlanner`` uses. The result is plain data
the code generator renders as offsets into one ``static`` arena.

```python
from deploy.codegen.memory_plan import Buffer, plan
p = plan([Buffer("a", 1000, 0, 1), Buffer("b", 500, 1, 2), Buffer("c", 1000, 2, 3)])
p.peak   # 1500: a and c share bytes 0..999
```
"""
from __future__ import annotations

import dataclasses

__all__ = ["Buffer", "Plan", "plan", "ALIGN"]

#: Every tensor starts on a 16-byte boundary (word access and LDRD/LDM safe).
ALIGN = 16


@dataclasses.dataclass(frozen=True)
class Buffer:
    """An activation: ``size`` bytes alive from op ``first`` to op ``last`` (inclusive)."""

    name: str
    size: int
    first: int
    last: int

    def overlaps(self, other: "Buffer") -> bool:
        return not (self.last < other.first or other.last < self.first)


@dataclasses.dataclass
class Plan:
    offsets: dict  # name -> byte offset in the arena
    peak: int  # arena bytes needed
    buffers: list

    def check(self) -> None:
        """Assert no two simultaneously live tensors share a byte (a test aid)."""
        for i, a in enumerate(self.buffers):
            for b in self.buffers[i + 1:]:
                if a.overlaps(b) and a.size and b.size:
                    oa, ob = self.offsets[a.name], self.offsets[b.name]
                    if oa < ob + b.size and ob < oa + a.size:
                        raise AssertionError(f"{a.name} and {b.name} are live together and overlap in memory")


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(buffers) -> Plan:
    buffers = list(buffers)
    names = [b.name for b in buffers]
    if len(set(names)) != len(names):
        raise ValueError("buffer names must be unique")
    for b in buffers:
        if b.size < 0 or b.last < b.first:
            raise ValueError(f"buffer {b.name}: bad size or lifetime ({b.size} bytes, ops {b.first}..{b.last})")
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    placed: list[tuple[int, Buffer]] = []
    offsets = {}
    for buf in order:
        size = _align(buf.size)
        live = sorted((off, _align(o.size)) for off, o in placed if o.overlaps(buf))
        offset = 0
        for off, osize in live:
            if offset + size <= off:
                break
            offset = max(offset, off + osize)
        offsets[buf.name] = offset
        placed.append((offset, buf))
    peak = max((offsets[b.name] + _align(b.size) for b in buffers), default=0)
    return Plan(offsets=offsets, peak=peak, buffers=buffers)
