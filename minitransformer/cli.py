"""The command line: ``minitransformer <command> ...`` (also ``python -m minitransformer ...``).

Each command is two functions: ``add_<command>_parser(subparsers)`` declares its arguments and
sets ``run=run_<command>``; ``run_<command>(args)`` does the work and returns an exit code. A new
command adds its two functions and one line to COMMANDS.
"""

import argparse
import sys

from minitransformer.data.download import ENV_BASE_URL, REGISTRY, default_data_dir, download

__all__ = ["build_parser", "main"]


# --------------------------------------------------------------------------- download


def add_download_parser(subparsers):
    parser = subparsers.add_parser(
        "download", help="fetch a real data set (IMDB, GloVe, Multi30k), verified and cached",
        description="Download a data set over HTTPS, verify its checksum, resume a broken "
                    "download, and print where the files are. A file already in place and "
                    "verified is not fetched again.",
    )
    parser.add_argument("name", choices=sorted(REGISTRY),
                        help="; ".join(f"{n}: {s.description}" for n, s in REGISTRY.items()))
    parser.add_argument("--dest", metavar="DIR",
                        help=f"parent folder of the data (default: {default_data_dir()}, or "
                             "$MINITRANSFORMER_DATA)")
    parser.add_argument("--base-url", metavar="URL",
                        help=f"fetch each file from URL/<file name> (a mirror; default: "
                             f"${ENV_BASE_URL}, else the official sites)")
    parser.add_argument("--sha256", metavar="HEX",
                        help="expected SHA-256 of the file (one-file data sets), replacing the "
                             "built-in checksum")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_download)


def run_download(args):
    download(args.name, dest=args.dest, base_url=args.base_url, sha256=args.sha256,
             progress=False if args.no_progress else None)
    return 0


# --------------------------------------------------------------------------- the parser

COMMANDS = [add_download_parser]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minitransformer",
        description="minitransformer: a Transformer framework built from scratch, written to be "
                    "read.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for add_parser in COMMANDS:
        add_parser(subparsers)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as error:  # DownloadError is an OSError
        print(f"minitransformer {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minitransformer {args.command}: interrupted", file=sys.stderr)
        return 130
