"""What the benchmarks under tools/ share: running a command as a child and measuring it."""
import os
import subprocess
import sys
import time


def measure(cmd):
    """Wall seconds and peak resident MiB (ru_maxrss) of `cmd` run as a child. ru_maxrss of a child counts the
    parent's pages at fork: callers stay small (no numpy, no mlx) so that the figure is the child's own."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(cmd[:4])}... failed ({status})")
    return time.perf_counter() - t, usage.ru_maxrss / 1024
