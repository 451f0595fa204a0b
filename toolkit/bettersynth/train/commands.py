"""Placeholder: the train subcommands are being written; register() adds nothing yet."""


def register(subparsers) -> None:
    return None
