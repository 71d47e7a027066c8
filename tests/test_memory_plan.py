import random

import pytest

from deploy.codegen.memory_plan import ALIGN, Buffer, plan


def test_disjoint_lifetimes_share_memory():
    p = plan([Buffer("a", 1000, 0, 1), Buffer("b", 500, 1, 2), Buffer("c", 1000, 2, 3)])
    p.check()
    assert p.offsets["a"] == p.offsets["c"] == 0
    assert p.peak == 1008 + 512  # aligned sizes of a (or c) and b


def test_chain_peak_is_largest_adjacent_pair():
    sizes = [96 * 96 * 4, 24 * 24 * 4, 12 * 12 * 8, 6 * 6 * 16, 3 * 3 * 32, 8]
    bufs = [Buffer(f"t{i}", s, i, i + 1) for i, s in enumerate(sizes)]
    p = plan(bufs)
    p.check()
    assert p.peak == max(-(-a // ALIGN) * ALIGN + -(-b // ALIGN) * ALIGN for a, b in zip(sizes, sizes[1:]))


def test_random_plans_never_overlap():
    rng = random.Random(0)
    for _ in range(200):
        bufs = []
        for i in range(rng.randint(1, 12)):
            first = rng.randint(0, 10)
            bufs.append(Buffer(f"b{i}", rng.randint(0, 5000), first, first + rng.randint(0, 5)))
        p = plan(bufs)
        p.check()
        assert p.peak <= sum(-(-b.size // ALIGN) * ALIGN for b in bufs)
        assert all(off % ALIGN == 0 for off in p.offsets.values())


def test_bad_buffers_are_refused():
    with pytest.raises(ValueError, match="lifetime"):
        plan([Buffer("x", 10, 3, 1)])
    with pytest.raises(ValueError, match="unique"):
        plan([Buffer("x", 10, 0, 1), Buffer("x", 10, 0, 1)])
