"""python -m fastact {info,bench}: the build and the benchmark."""
import argparse
import sys


def build_parser():
    ap = argparse.ArgumentParser(
        prog="python -m fastact",
        description="fastact: neural-network activations and their gradients on NumPy arrays.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("info", help="print the version, backend, SIMD levels, OpenMP, threads, "
                                "compiler and build flags (fastact.show_config())",
                   description="Print fastact's configuration (fastact.show_config()).")
    from . import bench
    bench.add_arguments(sub.add_parser(
        "bench", help="time every activation against NumPy and PyTorch; print a table of "
                      "times and speed-ups",
        description=bench.__doc__.split("\n\n")[0].replace("``", "")))
    return ap


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "info":
        from ._config import show_config
        show_config()
        return 0
    from . import bench
    return bench.run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
