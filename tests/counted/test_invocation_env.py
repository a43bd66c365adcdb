"""What a counted program's environment pins: the allocator settings that make counts repeat between sessions."""

from __future__ import annotations

from pathlib import Path

from energybench.counted.valgrind import DETERMINISM_ENV, MALLOC_TUNABLES, CacheGeometry, invocation, tunables


def _env(environ: dict[str, str]) -> dict[str, str]:
    return invocation(["python", "-c", "pass"], Path("/tmp/out"), geometry=CacheGeometry(), whole_program=False,
                      valgrind="/usr/bin/valgrind", environ=environ).env


def test_the_counted_program_runs_without_glibcs_per_thread_cache_and_fast_bins():
    env = _env({"PATH": "/usr/bin"})
    assert env["GLIBC_TUNABLES"].split(":") == list(MALLOC_TUNABLES)
    assert {"glibc.malloc.tcache_count=0", "glibc.malloc.mxfast=0"} <= set(MALLOC_TUNABLES)
    assert all(env[k] == v for k, v in DETERMINISM_ENV.items())


def test_a_users_own_tunables_are_kept_and_ours_replace_the_same_names():
    env = _env({"PATH": "/usr/bin", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=7:glibc.pthread.rseq=0"})
    assert env["GLIBC_TUNABLES"] == "glibc.pthread.rseq=0:" + ":".join(MALLOC_TUNABLES)
    assert tunables("") == ":".join(MALLOC_TUNABLES)
    assert tunables("::glibc.malloc.mxfast=64") == ":".join(MALLOC_TUNABLES)
