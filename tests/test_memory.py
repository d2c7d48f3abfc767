"""The allocator tuning every dranspose command applies: large frame buffers are reused."""

import platform
import subprocess
import sys

import pytest

PROBE = r"""
import resource, sys
import numpy as np
from dranspose.io.memory import keep_large_buffers

tuned = keep_large_buffers()
src = np.ones(4 * 1024 * 1024, dtype=np.uint8)
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    copy = src.copy()
    del copy
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(tuned, max(faults[1:]))
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc's")


def probe(env_value: str) -> tuple[bool, int]:
    env = {"DRANSPOSE_MALLOC_TUNING": env_value, "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@glibc
def test_tuned_process_reuses_a_freed_4mb_buffer_without_page_faults():
    tuned, faults = probe("1")
    assert tuned
    # a fresh 4 MiB mapping faults in hundreds of pages; a reused heap block faults in none
    assert faults < 16


def thp_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


@glibc
@pytest.mark.skipif(thp_always(), reason="transparent huge pages map fresh memory in 2 MiB faults")
def test_tuning_can_be_switched_off_and_then_every_copy_maps_fresh_pages():
    tuned, faults = probe("0")
    assert not tuned
    assert faults > 64
