"""The interactive shell's menu for newcomers: pick a number, answer a few questions, see the command it ran."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Protocol

from cli.core.render import console
from cli.core.transfers import sent_transaction_ids
from cli.shell.line_editor import LineEditor


class Shell(Protocol):
    """What the menu needs of the shell (cli.shell.interactive.Shell), named here so the menu never imports it."""

    editor: LineEditor
    account_ids: list[str]

    def run_command(self, args: list[str]) -> int: ...


@dataclass(frozen=True)
class Question:
    prompt: str
    option: str | None  # None: a positional argument
    kind: str = "text"  # text, own_account (pick from the user's accounts), account, transaction


@dataclass(frozen=True)
class MenuItem:
    label: str
    command: tuple[str, ...]
    questions: tuple[Question, ...] = ()


MENU = (
    MenuItem("see my accounts and balances", ("accounts",)),
    MenuItem("check one account's balance", ("balance",), (Question("account", "-a", "own_account"),)),
    MenuItem(
        "move money",
        ("transfer",),
        (
            Question("from account", "-f", "own_account"),
            Question("to account", "-t", "account"),
            Question("amount (e.g. 12.50)", "-a"),
        ),
    ),
    MenuItem("see an account's transfers", ("history",), (Question("account", "-a", "own_account"),)),
    MenuItem("look up one transfer", ("transaction",), (Question("transaction id", "-i", "transaction"),)),
    MenuItem("watch a transfer's two-phase commit", ("trace",), (Question("transaction id", None, "transaction"),)),
    MenuItem("see my profile", ("profile",)),
    MenuItem("who am I logged in as", ("whoami",)),
    MenuItem("log in (as alice, bob, carol, teller or admin)", ("login",), (Question("username", "-u"),)),
    MenuItem("check that the services are up", ("health",)),
    MenuItem("run the race-condition demo", ("demo", "race-condition")),
)


class Cancelled(Exception):
    """The user left a question empty: back to the prompt."""


def run_menu(shell: Shell) -> None:
    console.print("[bold]What would you like to do?[/]")
    for number, item in enumerate(MENU, 1):
        console.print(f"  [bold cyan]{number:>2}[/]  {item.label}  [dim]({' '.join(item.command)})[/]")
    try:
        item = MENU[_choose(shell, "choose a number (Enter to go back): ", len(MENU)) - 1]
        args = list(item.command)
        for question in item.questions:
            answer = _ask(shell, question)
            args += [question.option, answer] if question.option else [answer]
    except Cancelled:
        return
    console.print(f"[dim]→ banking-cli {shlex.join(args)}[/]")
    shell.editor.remember(shlex.join(args))
    shell.run_command(args)


def _input(shell: Shell, prompt: str) -> str:
    """A menu answer, kept out of the command history (the command it builds goes there instead)."""
    answer = input(prompt).strip()
    if answer:
        shell.editor.forget_last_line()
    return answer


def _choose(shell: Shell, prompt: str, count: int) -> int:
    while True:
        answer = _input(shell, prompt)
        if not answer:
            raise Cancelled
        if answer.isdigit() and 1 <= int(answer) <= count:
            return int(answer)
        console.print(f"[yellow]type a number from 1 to {count}[/]")


def _ask(shell: Shell, question: Question) -> str:
    choices = {
        "own_account": shell.account_ids,
        "account": shell.account_ids,
        "transaction": list(reversed(sent_transaction_ids)),
    }.get(question.kind, [])
    for number, choice in enumerate(choices, 1):
        console.print(f"    [cyan]{number}[/]  {choice}")
    hint = " (a number above, or paste one)" if choices else ""
    answer = _input(shell, f"  {question.prompt}{hint}: ")
    if not answer:
        raise Cancelled
    if choices and answer.isdigit() and 1 <= int(answer) <= len(choices):
        return choices[int(answer) - 1]
    return answer
