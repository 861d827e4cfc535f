"""NumPy's OpenBLAS held to one thread around small float64 work (the linear feature
baseline's fits: ``[4000, 214]`` features per ant task). On shared cores OpenBLAS's
threads wait for each other: 40 ant tasks' fits took 11-35 s with its 2 threads and 1.8 s
with one (benchmarks/README.md, RL iteration section). Other BLAS libraries are left as
they are (no-op)."""
import contextlib
import ctypes
import functools
import os


@functools.lru_cache(maxsize=1)
def _openblas_threads():
    """``(get, set)`` of the OpenBLAS NumPy loaded, or None (another BLAS, no /proc)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in os.path.basename(line.split()[-1]).lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
            try:
                get = getattr(library, f"{prefix}openblas_get_num_threads{suffix}")
                set_ = getattr(library, f"{prefix}openblas_set_num_threads{suffix}")
            except AttributeError:
                continue
            get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
            return get, set_
    return None


def blas_threads():
    """OpenBLAS's thread count now (None if NumPy's BLAS is not OpenBLAS)."""
    import numpy  # noqa: F401 (loads the library)
    found = _openblas_threads()
    return None if found is None else found[0]()


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with NumPy's OpenBLAS on one thread, then restore its count."""
    import numpy  # noqa: F401 (loads the library)
    found = _openblas_threads()
    if found is None:
        yield
        return
    get, set_ = found
    previous = get()
    set_(1)
    try:
        yield
    finally:
        set_(previous)
