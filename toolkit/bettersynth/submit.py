"""Placeholder: submission packaging is being written; register() adds nothing yet."""


def register(subparsers) -> None:
    return None
