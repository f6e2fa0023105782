"""Evaluation and export actions of ``rescnn-appliance models`` (registered by models.py)."""

from __future__ import annotations

import argparse


def add_actions(msub: argparse._SubParsersAction) -> None:
    """Filled in as evaluation and export land."""
