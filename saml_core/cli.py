"""`python -m saml_core ...`: each area registers its own sub-commands."""
from __future__ import annotations

import argparse
import sys

from saml_core.artifacts import ArtifactError
from saml_core.config import ConfigError
from saml_core.data.types import DataError


def build_parser() -> argparse.ArgumentParser:
    from saml_core.data import cli as data_cli
    from saml_core import commands as engine_cli

    parser = argparse.ArgumentParser(prog="python -m saml_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_cli.add_commands(sub)
    engine_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, ConfigError, ArtifactError) as exc:  # bad input: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
