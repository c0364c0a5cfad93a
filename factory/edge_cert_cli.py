"""``factory edge cert``: create the edge agent's OPC UA application certificate and private key.

STUB (lead, 2026-11-30); the edge-security branch implements it. Runs without a settings file
(a gateway's first step).
"""

from __future__ import annotations

import argparse


def add_edge_cert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="cert: directory for the certificate and key")


def run_edge_cert(args: argparse.Namespace) -> int:
    print("factory edge cert: not implemented yet")
    return 2
