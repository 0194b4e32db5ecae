"""``python -m perpd.mcp``: the same as ``perpd mcp``, without loading the operator's
other commands first."""

import argparse
import sys

from perpd.mcp import command

parser = argparse.ArgumentParser(prog="python -m perpd.mcp", description=command.HELP)
command.add_arguments(parser)
sys.exit(command.main(parser.parse_args()))
