"""Indices past 2**31: run fastact in place on a float32 array of 2**31 + 17 elements
(8.6 GB of memory) with OpenMP threads, and check probes on both sides of 2**31 and at
the end. Too big for the test suite; run it by hand on a machine with >= 12 GB free:

    python tools/huge_array_check.py
"""
import time

import numpy as np

import fastact

N = (1 << 31) + 17


def main():
    x = np.zeros(N, np.float32)
    probes = np.array([0, (1 << 31) - 1, 1 << 31, (1 << 31) + 1, N - 1], np.int64)
    values = np.array([-1.0, 2.0, -3.0, 4.0, -5.0], np.float32)
    x[probes] = values
    t0 = time.perf_counter()
    fastact.sigmoid(x, out=x)              # in place: the only 8.6 GB there is
    dt = time.perf_counter() - t0
    assert np.array_equal(x[probes], fastact.sigmoid(values)), x[probes]
    assert np.count_nonzero(x == np.float32(0.5)) == N - probes.size
    x[probes] = 0.5
    fastact.relu_backward(x, x, out=x)     # a second kernel over the whole range
    assert np.all(x[-10:] == 0.5) and x[1 << 31] == 0.5
    print(f"ok: {N} elements, sigmoid in place in {dt:.2f} s on "
          f"{fastact.get_num_threads()} threads")


if __name__ == "__main__":
    main()
