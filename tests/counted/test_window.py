"""Counted windows under real valgrind: counts repeat across processes, scale with calls, exclude the harness,
and a workload that leaves the process is refused with its counts kept."""

from __future__ import annotations

import shutil

import pytest
from counted_targets import target

from energybench.counted.clientreq import ClientRequests
from energybench.counted.errors import CountedError
from energybench.counted.runner import count_target, count_targets
from energybench.counted.valgrind import OUT_DIR_ENV, RAW_EVENTS, Dump
from energybench.counted.window import count_calls

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None,
                                    reason="valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")


@needs_valgrind
def test_counts_repeat_across_processes_and_scale_with_calls():
    first = count_targets([target("empty"), target("sort_list")], 4, names=["empty", "sort"])
    second = count_targets([target("empty"), target("sort_list")], 4, names=["empty", "sort"])
    (eight,) = count_targets([target("empty"), target("sort_list")], 8, names=["empty", "sort"])[1:]
    empty, sort = first
    # a separate process counts the same instructions; cache misses move by well under 1% (heap addresses follow
    # the pid through the harness's bookkeeping), so the modeled joules agree to 0.05%
    again = second[1]
    assert again.counts["Ir"] == pytest.approx(sort.counts["Ir"], rel=1e-5)
    assert again.counts["D1mr"] == pytest.approx(sort.counts["D1mr"], rel=0.01)
    assert again.energy_j == pytest.approx(sort.energy_j, rel=5e-4)
    assert sort.counts["Ir"] > 1_000_000 and sort.counts["DLmr"] > 0
    # what is left of an empty benchmark is the harness's allocator noise, a few thousand instructions
    assert empty.counts["Ir"] < 10_000
    assert eight.counts["Ir"] == pytest.approx(2 * sort.counts["Ir"], rel=0.01)
    # every window starts with cold simulated caches: its compulsory misses are spread over more calls
    assert eight.counts["DLmr"] < 2 * sort.counts["DLmr"]
    assert eight.energy_per_call_j < sort.energy_per_call_j < 1.1 * eight.energy_per_call_j
    assert sort.source == "modeled" and sort.iterations == 4
    assert sort.details["valgrind"].startswith("3.") and sort.cache == sort.profile.cache
    assert sort.wall_s > 0 and sort.details["process_wall_s"] > sort.wall_s


@needs_valgrind
def test_a_workload_that_starts_a_process_is_refused_with_its_counts_kept():
    with pytest.raises(CountedError) as info:
        count_target(target("forker"), 1)
    message = str(info.value)
    assert "started a process" in message and "measured meter" in message and "\n" not in message
    assert info.value.exit_code == 2
    kept = info.value.result
    assert kept is not None and kept.counts["Ir"] > 0  # nothing measured is lost


def test_count_calls_outside_the_runner_says_how_to_start_it(monkeypatch):
    monkeypatch.delenv(OUT_DIR_ENV, raising=False)
    with pytest.raises(CountedError, match="session_invocation"):
        count_calls(lambda: None)


def test_client_requests_are_no_ops_on_a_real_cpu():
    requests = ClientRequests()
    assert requests.running_on_valgrind() == 0
    requests.start_instrumentation()  # a real CPU runs the magic sequence as plain rotations: nothing happens
    requests.dump_stats_at(requests.dump_request(b"energybench:nothing"))
    requests.stop_instrumentation()


def test_gpu_libraries_in_a_dump_are_recognised(tmp_path):
    dump = Dump(tmp_path / "x", 1, "Program termination", dict.fromkeys(RAW_EVENTS, 0),
                ("/usr/lib/libc.so.6", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/opt/torch/lib/libtorch_cpu.so"))
    assert dump.gpu_objects == ["/usr/lib/x86_64-linux-gnu/libcuda.so.1"]
