"""What Tab offers in the interactive shell: commands, their options, the user's account ids, recent transfers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SHELL_WORDS = ("menu", "help", "quit", "exit")
ACCOUNT_OPTIONS = frozenset({"-a", "--account", "-f", "--from", "-t", "--to"})
TRANSACTION_OPTIONS = frozenset({"-i", "--id"})


def candidates(
    group: Any, words_before: list[str], text: str, *, account_ids: Sequence[str], transaction_ids: Sequence[str]
) -> list[str]:
    """What may come next after `words_before` and starts with `text`, each with its trailing space.

    `group` is the CLI's click group: its commands and their options are the truth, never a copy.
    """
    if not words_before or words_before == ["help"]:
        options = sorted([*group.commands, *SHELL_WORDS])
    elif words_before[0] == "demo" and len(words_before) == 1:
        options = sorted(group.commands["demo"].commands)
    elif words_before[-1] in ACCOUNT_OPTIONS:
        options = list(account_ids)
    elif words_before[-1] in TRANSACTION_OPTIONS or (words_before == ["trace"] and not text.startswith("-")):
        options = list(transaction_ids)
    else:
        options = _option_names(group, words_before)
    return [option + " " for option in options if option.startswith(text)]


def _option_names(group: Any, words_before: list[str]) -> list[str]:
    command = group.commands.get(words_before[0])
    if command is not None and words_before[0] == "demo" and len(words_before) > 1:
        command = command.commands.get(words_before[1])
    if command is None:
        return []
    names = {name for parameter in command.params for name in (*parameter.opts, *parameter.secondary_opts)}
    return sorted(name for name in names | {"--help"} if name.startswith("-"))
