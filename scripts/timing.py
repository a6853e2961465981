"""Wall-clock timing shared by the benchmark scripts."""
import statistics
import time

import torch


def median_seconds(fn, repeats, device):
    """Median wall time of `fn()` over `repeats` calls, after one warm-up call (which also fills caches)."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
