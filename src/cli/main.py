"""Command line entry point (filled in by the core pipeline work)."""


def main() -> int:
    return 0
