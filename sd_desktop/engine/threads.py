"""How many threads torch computes with.

Torch already defaults to one thread per physical core. A desktop app also has a
UI thread, but it is idle nearly all the time and torch releases the GIL inside
every operator, so on small machines the UI stays responsive with every core
computing (measured on 2 cores while a UNet runs: timer wake-ups p99 ~8 ms, a
2 ms UI task p99 ~11 ms, against a 1.5x slower step with one core held back).
Only on larger machines, where one core is a small share, is one left free.
"""

from __future__ import annotations

import os
from pathlib import Path

# Below this many physical cores no core is held back for the UI.
RESERVE_FROM_CORES = 6

_SYSFS_CPU = Path("/sys/devices/system/cpu")


def usable_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity, where the OS says)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int] | None = None, sysfs: Path = _SYSFS_CPU) -> int:
    """Physical cores among `cpus`: SMT siblings share one core's matrix units.

    Reads Linux's topology files; elsewhere every logical CPU counts as a core.
    """
    cpus = usable_cpus() if cpus is None else cpus
    cores: set[str] = set()
    for cpu in cpus:
        try:
            siblings = (sysfs / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text()
        except OSError:
            return max(1, len(cpus))
        cores.add(siblings.strip())
    return max(1, len(cores))


def compute_threads(cores: int, reserve_for_ui: bool) -> int:
    """Threads for `cores` physical cores; one is left to the UI only on big machines."""
    cores = max(1, cores)
    if reserve_for_ui and cores >= RESERVE_FROM_CORES:
        return cores - 1
    return cores


def configure_threads(reserve_for_ui: bool = True, cores: int | None = None) -> int:
    """Set torch's intra-op thread count for this process and return it.

    Call once from the thread that will run the model, before the first model call.
    """
    import torch  # here, so the policy above can be read without paying torch's import

    threads = compute_threads(physical_cores() if cores is None else cores, reserve_for_ui)
    torch.set_num_threads(threads)
    return threads
