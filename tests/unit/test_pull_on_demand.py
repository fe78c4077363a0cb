"""Pull contexts produce their objects on demand (issue 16): an Open operation costs its
first batch (and one object read ahead), not the whole enumeration; a context holds no
more than that; closing or expiring it ends the enumeration."""

from __future__ import annotations

import pytest
from pywbem import CIM_ERR_FAILED, CIM_ERR_INVALID_ENUMERATION_CONTEXT, CIMError

from kvm_providers.cimom.pull import INSTANCES, PullManager


class Source:
    """A counted enumeration of `n` items; `fail_at` raises there."""

    def __init__(self, n: int, fail_at: int = -1):
        self.n, self.fail_at = n, fail_at
        self.produced = 0
        self.closed = False

    def __iter__(self):
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise CIMError(CIM_ERR_FAILED, f"item {i} failed")
                self.produced += 1
                yield f"<I{i}/>"
        finally:
            self.closed = True


def test_open_produces_the_first_batch_only():
    mgr = PullManager()
    src = Source(1000)
    items, ctx, end = mgr.open("root/virt", INSTANCES, iter(src), 60.0, 100, "a")
    assert items == [f"<I{i}/>" for i in range(100)] and not end and ctx
    assert src.produced == 101                  # one read ahead: is there more?
    items, _, end = mgr.pull(ctx, "root/virt", INSTANCES, 250, "a")
    assert items[0] == "<I100/>" and len(items) == 250 and not end
    assert src.produced == 351
    assert mgr.count(ctx, "root/virt", "a") == 650     # counting produces the rest
    items, _, end = mgr.pull(ctx, "root/virt", INSTANCES, 1000, "a")
    assert len(items) == 650 and end and items[-1] == "<I999/>"
    assert len(mgr) == 0 and src.closed


def test_exact_batches_end_without_an_empty_pull():
    mgr = PullManager()
    items, ctx, end = mgr.open("root/virt", INSTANCES, iter(Source(200)), 60.0, 100, "a")
    items, _, end = mgr.pull(ctx, "root/virt", INSTANCES, 100, "a")
    assert len(items) == 100 and end and len(mgr) == 0


def test_small_enumerations_need_no_context():
    mgr = PullManager()
    items, ctx, end = mgr.open("root/virt", INSTANCES, iter(Source(5)), 60.0, 100, "a")
    assert len(items) == 5 and end and ctx == "" and len(mgr) == 0
    items, ctx, end = mgr.open("root/virt", INSTANCES, iter(Source(0)), 60.0, 0, "a")
    assert items == [] and end and ctx == ""


def test_close_ends_the_enumeration():
    mgr = PullManager()
    src = Source(1000)
    _, ctx, _ = mgr.open("root/virt", INSTANCES, iter(src), 60.0, 10, "a")
    mgr.close(ctx, "root/virt", "a")
    assert src.closed and src.produced == 11 and len(mgr) == 0


def test_an_error_midway_is_the_pulls_answer_and_closes_the_context():
    mgr = PullManager()
    src = Source(1000, fail_at=150)
    _, ctx, _ = mgr.open("root/virt", INSTANCES, iter(src), 60.0, 100, "a")
    with pytest.raises(CIMError) as err:
        mgr.pull(ctx, "root/virt", INSTANCES, 100, "a")
    assert err.value.status_code == CIM_ERR_FAILED and "item 150" in err.value.status_description
    assert src.closed and len(mgr) == 0
    with pytest.raises(CIMError) as err:
        mgr.pull(ctx, "root/virt", INSTANCES, 100, "a")
    assert err.value.status_code == CIM_ERR_INVALID_ENUMERATION_CONTEXT


def test_an_error_in_the_first_batch_is_the_opens_answer():
    mgr = PullManager()
    src = Source(1000, fail_at=3)
    with pytest.raises(CIMError):
        mgr.open("root/virt", INSTANCES, iter(src), 60.0, 100, "a")
    assert src.closed and len(mgr) == 0


def test_expired_contexts_end_their_enumeration():
    mgr = PullManager()
    src = Source(1000)
    _, ctx, _ = mgr.open("root/virt", INSTANCES, iter(src), 60.0, 10, "a")
    mgr._ctx[ctx].expires = 0.0
    assert mgr.sweep() == 1 and src.closed
