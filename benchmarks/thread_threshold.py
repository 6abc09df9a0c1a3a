"""Where a second thread starts to pay: time kernels of each cost class on one thread and
on all threads, with fastact's single-thread threshold disabled, for growing sizes.
fastact._backend.GRAIN (elements per kernel cost) comes from this.

    python benchmarks/thread_threshold.py
"""
import time

import numpy as np

import fastact
from fastact import _activations, _backend


def best(f, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.01:
            f()
            n += 1
        times.append((time.perf_counter() - t0) / n)
    return min(times)


def main():
    threads = fastact.get_num_threads()
    sizes = [1 << k for k in range(10, 21)]
    print(f"threads: {threads}; time on 1 thread / time on {threads} (above 1: threads pay)")
    print(f"{'kernel (cost)':20s}" + "".join(f"{n:>8d}" for n in sizes))
    for name in ("relu", "hardswish", "softsign", "elu", "tanh", "mish", "gelu"):
        kernel = _activations.KERNELS[_activations.KERNEL_INDEX[name]]
        module = _backend.kernel_module()
        _backend._runner.use_table(module.TABLE_CAPSULE, [0] * len(_activations.KERNELS),
                                   module.SEG_CAPSULE, len(_activations.SEGMENTS))  # never serial
        row = []
        for n in sizes:
            x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
            out = np.empty_like(x)
            f = getattr(fastact, name)
            with fastact.threads(1):
                t1 = best(lambda: f(x, out=out))
            with fastact.threads(threads):
                tn = best(lambda: f(x, out=out))
            row.append(t1 / tn)
        print(f"{name + ' (' + str(kernel.cost) + ')':20s}" + "".join(f"{r:8.2f}" for r in row))
    _backend.set_simd_level(_backend.level)                              # restore the grains


if __name__ == "__main__":
    main()
