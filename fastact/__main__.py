"""python -m fastact {info,bench}"""
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m fastact {info,bench} [options]  (bench --help for its options)"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "info":
        from ._config import show_config
        show_config()
        return 0
    if command == "bench":
        from .bench import main as bench
        return bench(rest)
    print(f"unknown command {command!r}\n{usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
