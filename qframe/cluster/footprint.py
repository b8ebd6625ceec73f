"""The cluster's memory footprint, measured by the sentinel for its heartbeat (psutil).

``qframe memory`` may run on another host than the cluster, so the cluster measures
itself: the host's available and total memory, the lowest available seen since it
started, and the resident memory (RSS) of each of its processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil


@dataclass
class Footprint:
    """One measurement: bytes available and in total, lowest available seen, RSS by pid."""

    available: int
    total: int
    lowest_available: int
    rss: dict[str, int] = field(default_factory=dict)


class FootprintMeter:
    """Measures the host's memory and the RSS of given processes, remembering the lowest available."""

    def __init__(self) -> None:
        self.lowest: int | None = None
        self._processes: dict[int, psutil.Process] = {}

    def measure(self, pids: Iterable[int]) -> Footprint:
        """Measure now; a process that exited (or cannot be read) is left out."""
        import psutil  # here, not at the top: only the sentinel measures, the other processes skip it

        memory = psutil.virtual_memory()
        self.lowest = memory.available if self.lowest is None else min(self.lowest, memory.available)
        wanted = {pid for pid in pids if pid}
        for gone in set(self._processes) - wanted:
            del self._processes[gone]
        rss = {}
        for pid in sorted(wanted):
            try:
                process = self._processes.get(pid) or self._processes.setdefault(pid, psutil.Process(pid))
                rss[str(pid)] = process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._processes.pop(pid, None)
        return Footprint(memory.available, memory.total, self.lowest, rss)
