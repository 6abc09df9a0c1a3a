"""python -m fastact {info,bench}"""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastact", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print show_config()")
    args = parser.parse_args(argv)
    if args.command == "info":
        import fastact
        fastact.show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
