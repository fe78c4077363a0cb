"""bench_scale's judgement of the 10,000-guest goal (issue 16): time, the peak while
serving, and the RSS after every request under the bound and flat."""

from __future__ import annotations

from tests.support.benchmarks import load_benchmark


def _bench_scale():
    return load_benchmark("bench_scale")


def _res(median=1.3, serving=224, peak=427, after_runs=224, after=224):
    return {"n": 10000, "all RASDs": {"median": median}, "peak_serving_kib": serving * 1024,
            "peak_rss_kib": peak * 1024, "rss_after_runs_kib": after_runs * 1024,
            "rss_after_repeat_kib": after * 1024, "requests": 25}


def test_met_with_the_driver_loading_left_out():
    verdict = _bench_scale()._big_verdict(_res())
    assert verdict.endswith("  ok") and "peak while serving 224 MiB" in verdict


def test_each_bound_misses():
    b = _bench_scale()
    assert b._big_verdict(_res(median=2.1)).endswith("MISSED")         # time
    assert b._big_verdict(_res(serving=430)).endswith("MISSED")        # peak serving
    assert b._big_verdict(_res(after_runs=224, after=260)).endswith("MISSED")  # not flat
    assert b._big_verdict(_res(after_runs=420, after=420)).endswith("MISSED")  # over 400


def test_without_a_serving_peak_the_whole_peak_counts():
    # a kernel that refused the reset: the peak with the node's loading is judged
    assert _bench_scale()._big_verdict(_res(serving=0, peak=427)).endswith("MISSED")
