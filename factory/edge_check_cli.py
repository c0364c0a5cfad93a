"""``factory edge check``: connect to every OPC UA source and print what each signal resolved to.

STUB (lead, 2026-11-30); the edge-address branch implements it.
"""

from __future__ import annotations

import argparse

from core.assets import AssetModel
from core.settings import Settings


def add_edge_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="check: print the result as JSON")


def run_edge_check(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> int:
    print("factory edge check: not implemented yet")
    return 2
