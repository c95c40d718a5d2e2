"""Command-line helpers shared by the benchmark scripts."""

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, with a clear message otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 1, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value
