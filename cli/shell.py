"""`banking-cli interactive`: a prompt with history, completion of commands and of the user's own
account ids, a menu for newcomers, the CLI's own commands, and live notifications of transfers.

Each line runs through the same typer app as the command line, so the shell can never drift from it.
Notifications come from a polling thread (cli.notifications); they print at once while the prompt
waits, and are held back while a command runs so they never cut into its output.
"""
from __future__ import annotations

import shlex
import sys
import threading
from pathlib import Path
from typing import Any

import typer

from cli.client import Client
from cli.config import load_config, token_path
from cli.errors import CliError
from cli.notifications import TransferWatcher
from cli.render import console
from cli.session import load_session
from cli.transfers import sent_transaction_ids

SHELL_WORDS = ("menu", "help", "quit", "exit")
REFUSED_INSIDE = {"interactive": "you are already in the interactive shell",
                  "up": "run `banking-cli up` in another terminal; it runs until Ctrl-C"}
ACCOUNT_OPTIONS = frozenset({"-a", "--account", "-f", "--from", "-t", "--to"})
TRANSACTION_OPTIONS = frozenset({"-i", "--id"})
SESSION_CHANGERS = frozenset({"login", "logout"})
HISTORY_LENGTH = 1000
HISTORY_FILE_NAME = "shell_history"
SECRET_OPTIONS = frozenset({"-p", "--password"})


class Shell:
    def __init__(self, app: typer.Typer, poll_s: float) -> None:
        self.group = typer.main.get_command(app)
        self.account_ids: list[str] = []
        self.lock = threading.Lock()
        self.waiting_at_prompt = False
        self.prompt = ""
        self.held_notices: list[str] = []
        self.watcher = TransferWatcher(self.watched, self.announce, poll_s)
        self.readline: Any = _readline()

    # --- the loop -------------------------------------------------------------------------------------------

    def run(self) -> None:
        history_file = token_path(load_config()).expanduser().parent / HISTORY_FILE_NAME
        self._setup_readline(history_file)
        self._banner()
        self.refresh_accounts()
        self.watcher.start()
        try:
            while self._read_and_run():
                pass
        finally:
            self.watcher.stop()
            self._save_history(history_file)

    def _read_and_run(self) -> bool:
        """One prompt and one command; False when the user leaves."""
        self._show_held_notices()
        with self.lock:
            self.prompt = self._prompt_text()
            self.waiting_at_prompt = True
        try:
            line = input(self.prompt)
        except EOFError:
            console.print()
            return False
        except KeyboardInterrupt:
            console.print("^C  (quit or Ctrl-D to leave)")
            return True
        finally:
            with self.lock:
                self.waiting_at_prompt = False
        return self.execute(line)

    def execute(self, line: str) -> bool:
        try:
            words = shlex.split(line)
        except ValueError as error:
            console.print(f"[red]error: {error}[/]")
            return True
        if not words:
            return True
        if words[0] in ("quit", "exit"):
            return False
        if SECRET_OPTIONS & set(words):
            self._forget_last_line()
        if words[0] == "menu":
            from cli.shell_menu import run_menu

            run_menu(self)
        elif words[0] == "help":
            self.run_command([*words[1:], "--help"])
            if len(words) == 1:
                console.print("In this shell also: [bold]menu[/] (guided), [bold]quit[/]; Tab completes commands, "
                              "options and your account ids.")
        elif words[0] in REFUSED_INSIDE:
            console.print(f"[yellow]{REFUSED_INSIDE[words[0]]}[/]")
        else:
            self.run_command(words)
        return True

    def run_command(self, args: list[str]) -> int:
        """Run one CLI command in-process, exactly as `banking-cli ARGS` would; its exit code."""
        try:
            result = self.group.main(args=args, prog_name="banking-cli", standalone_mode=False)
        except typer.TyperException as error:  # a usage error: show it the way the CLI does
            from typer import rich_utils

            rich_utils.rich_format_error(error)
            result = error.exit_code
        except typer.Abort:
            console.print("aborted")
            result = 1
        if args and args[0] in SESSION_CHANGERS:
            self.refresh_accounts()
        return result if isinstance(result, int) else 0

    # --- session and accounts -------------------------------------------------------------------------------

    def _session(self):
        try:
            session = load_session(token_path(load_config()))
        except CliError:
            return None
        return None if session is None or session.expired else session

    def _prompt_text(self) -> str:
        session = self._session()
        return f"banking {session.username}> " if session else "banking (not logged in)> "

    def refresh_accounts(self) -> None:
        """Learn the logged-in customer's account ids, for completion and notifications."""
        session = self._session()
        ids: list[str] = []
        if session is not None and session.customer_id:
            try:
                rows = Client(load_config(), session.token).get("accounts", f"/accounts/customer/{session.customer_id}")
                ids = [str(row["account_id"]) for row in rows]
            except CliError:
                pass
        self.account_ids = ids

    def watched(self) -> tuple[Client | None, list[str]]:
        session = self._session()
        if session is None or not session.customer_id or not self.account_ids:
            return None, []
        return Client(load_config(), session.token), list(self.account_ids)

    # --- notifications --------------------------------------------------------------------------------------

    def announce(self, message: str) -> None:
        """Print a notification now if the prompt is waiting (then redraw it), else hold it back."""
        with self.lock:
            if not self.waiting_at_prompt:
                self.held_notices.append(message)
                return
            typed = self.readline.get_line_buffer() if self.readline else ""
            sys.stdout.write("\r\x1b[2K")
            console.print(message)
            sys.stdout.write(self.prompt + typed)
            sys.stdout.flush()

    def _show_held_notices(self) -> None:
        with self.lock:
            notices, self.held_notices = self.held_notices, []
        for notice in notices:
            console.print(notice)

    # --- readline: history and completion -------------------------------------------------------------------

    def _setup_readline(self, history_file: Path) -> None:
        if self.readline is None:
            return
        self.readline.set_completer_delims(" \t\n")
        self.readline.set_completer(self.complete)
        self.readline.parse_and_bind("tab: complete")
        self.readline.set_history_length(HISTORY_LENGTH)
        try:
            self.readline.read_history_file(history_file)
        except OSError:
            pass

    def _save_history(self, history_file: Path) -> None:
        if self.readline is None:
            return
        try:
            history_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            history_file.touch(mode=0o600)
            self.readline.write_history_file(history_file)
        except OSError:
            pass

    def _forget_last_line(self) -> None:
        """Keep typed passwords out of the history file."""
        if self.readline is not None and self.readline.get_current_history_length() > 0:
            self.readline.remove_history_item(self.readline.get_current_history_length() - 1)

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            line = self.readline.get_line_buffer()
            self._matches = self.candidates(line[:self.readline.get_begidx()].split(), text)
        return self._matches[state] if state < len(self._matches) else None

    def candidates(self, words_before: list[str], text: str) -> list[str]:
        """What may come next after `words_before`, starting with `text`."""
        names = sorted([*self.group.commands, *SHELL_WORDS])
        if not words_before or words_before == ["help"]:
            options = names
        elif words_before[0] == "demo" and len(words_before) == 1:
            options = sorted(self.group.commands["demo"].commands)
        elif words_before[-1] in ACCOUNT_OPTIONS:
            options = self.account_ids
        elif words_before[-1] in TRANSACTION_OPTIONS or (words_before == ["trace"] and not text.startswith("-")):
            options = list(reversed(sent_transaction_ids))
        else:
            options = self._option_names(words_before)
        return [option + " " for option in options if option.startswith(text)]

    def _option_names(self, words_before: list[str]) -> list[str]:
        command = self.group.commands.get(words_before[0])
        if command is not None and words_before[0] == "demo" and len(words_before) > 1:
            command = command.commands.get(words_before[1])
        if command is None:
            return []
        return sorted(name for parameter in command.params
                      for name in (*parameter.opts, *parameter.secondary_opts) if name.startswith("-"))

    def _banner(self) -> None:
        session = self._session()
        who = (f"logged in as [bold]{session.username}[/] ({session.role})" if session
               else "not logged in: type [bold]login[/]")
        console.print(f"[bold]banking-cli interactive[/] — {who}.")
        console.print("New here? Type [bold]menu[/]. [bold]help[/] lists the commands, Tab completes them and your "
                      "account ids, [bold]quit[/] or Ctrl-D leaves.")
        if self.readline is None:
            console.print("[dim](no readline on this system: no history or completion)[/]")


def _readline() -> Any:
    try:
        import readline
    except ImportError:
        return None
    return readline


def run_shell(app: typer.Typer, *, poll_s: float) -> None:
    if not sys.stdin.isatty():
        console.print("[dim]stdin is not a terminal: reading commands line by line[/]")
    Shell(app, poll_s).run()
