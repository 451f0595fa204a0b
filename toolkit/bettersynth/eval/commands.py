"""Placeholder: the eval subcommands are being written; register() adds nothing yet."""


def register(subparsers) -> None:
    return None
