"""`banking-cli interactive`: a prompt with history, completion of commands and of the user's own
account ids, a menu for newcomers, the CLI's own commands, and live notifications of transfers.

Each line runs through the same typer app as the command line, so the shell can never drift from it.
Notifications come from a polling thread (cli.shell.notifications); they print at once while the prompt
waits, and are held back while a command runs so they never cut into its output.
"""

from __future__ import annotations

import shlex
import sys
import threading

import typer

from cli.core.client import Client
from cli.core.config import load_config, token_path
from cli.core.errors import CliError
from cli.core.render import console
from cli.core.session import Session, load_session
from cli.core.transfers import sent_transaction_ids
from cli.shell.completion import candidates
from cli.shell.line_editor import LineEditor
from cli.shell.menu import run_menu
from cli.shell.notifications import TransferWatcher
from cli.shell.push import PushListener

REFUSED_INSIDE = {
    "interactive": "you are already in the interactive shell",
    "up": "run `banking-cli up` in another terminal; it runs until Ctrl-C",
}
SESSION_CHANGERS = frozenset({"login", "logout"})
SECRET_OPTIONS = frozenset({"-p", "--password"})
HISTORY_FILE_NAME = "shell_history"
# The watcher re-reads the user's accounts this often (in polls), to notice accounts opened meanwhile.
ACCOUNT_REFRESH_POLLS = 10


class Shell:
    def __init__(self, app: typer.Typer, poll_s: float) -> None:
        self.group = typer.main.get_command(app)
        self.account_ids: list[str] = []
        self.accounts_token: str | None = None  # the token the account list was read with
        self.polls_since_refresh = 0
        self.lock = threading.Lock()  # guards the prompt state below, shared with the watcher's thread
        self.waiting_at_prompt = False
        self.prompt = ""
        self.held_notices: list[str] = []
        self.push = PushListener(self.push_target, self.announce, lambda *seen: self.watcher.seen(*seen))
        self.watcher = TransferWatcher(self.watched, self.announce, poll_s, push_live=self.push.live.is_set)
        history_file = token_path(load_config()).parent / HISTORY_FILE_NAME
        self.editor = LineEditor(history_file, self.complete)

    def run(self) -> None:
        self.editor.start()
        self._banner()
        self.refresh_accounts()
        self.watcher.start()
        self.push.start()
        try:
            while self._read_and_run():
                pass
        finally:
            self.push.stop()
            self.watcher.stop()
            self.editor.save()

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
        """Run one line; False when it asks to leave."""
        try:
            words = shlex.split(line)
        except ValueError as error:
            console.print(f"[red]error: {error}[/]")
            return True
        if SECRET_OPTIONS & set(words):
            self.editor.forget_last_line()
        if not words:
            return True
        if words[0] in ("quit", "exit"):
            return False
        if words[0] == "menu":
            run_menu(self)
        elif words[0] == "help":
            self.run_command([*words[1:], "--help"])
            if len(words) == 1:
                console.print(
                    "In this shell also: [bold]menu[/] (guided), [bold]quit[/]; Tab completes commands, "
                    "options and your account ids."
                )
        elif words[0] in REFUSED_INSIDE:
            console.print(f"[yellow]{REFUSED_INSIDE[words[0]]}[/]")
        else:
            self.run_command(words)
        return True

    def run_command(self, args: list[str]) -> int:
        """Run one CLI command in-process, exactly as `banking-cli ARGS` would; its exit code."""
        try:
            result = self.group.main(args=args, prog_name="banking-cli", standalone_mode=False)
        except typer.TyperException as error:  # what the CLI's group leaves to typer (e.g. bad global options)
            from typer import rich_utils

            # typer annotates ClickException, yet reads only what every TyperException has (format_message,
            # an optional ctx): ClickException is its subclass in typer's own copy of click.
            rich_utils.rich_format_error(error)  # type: ignore[arg-type]
            result = error.exit_code
        except typer.Abort:
            console.print("aborted")
            result = 1
        if args and args[0] in SESSION_CHANGERS:
            self.refresh_accounts()
            self.watcher.poll_now()  # learn the new login's accounts now, so nothing after this is missed
        return result if isinstance(result, int) else 0

    def complete(self, words_before: list[str], text: str) -> list[str]:
        return candidates(
            self.group,
            words_before,
            text,
            account_ids=self.account_ids,
            transaction_ids=list(reversed(sent_transaction_ids)),
        )

    # --- the session and its accounts, for completion and notifications --------------------------------------

    def session(self) -> Session | None:
        try:
            session = load_session(token_path(load_config()))
        except CliError:
            return None
        return None if session is None or session.expired else session

    def _prompt_text(self) -> str:
        session = self.session()
        return f"banking {session.username}> " if session else "banking (not logged in)> "

    def refresh_accounts(self) -> None:
        """Learn the logged-in customer's account ids (none for staff, or when the service is down)."""
        session = self.session()
        self.accounts_token = session.token if session else None
        self.polls_since_refresh = 0
        ids: list[str] = []
        if session is not None and session.customer_id:
            try:
                rows = Client(load_config(), session.token).get("accounts", f"/accounts/customer/{session.customer_id}")
                ids = [str(row["account_id"]) for row in rows]
            except CliError:
                pass
        self.account_ids = ids

    def watched(self) -> tuple[Client | None, list[str]]:
        """For the watcher: a client and the accounts to poll, re-read when the login changed (here or in
        another terminal) and every ACCOUNT_REFRESH_POLLS polls."""
        session = self.session()
        self.polls_since_refresh += 1
        if (
            session.token if session else None
        ) != self.accounts_token or self.polls_since_refresh >= ACCOUNT_REFRESH_POLLS:
            self.refresh_accounts()
        if session is None or not session.customer_id or not self.account_ids:
            return None, []
        return Client(load_config(), session.token), list(self.account_ids)

    def push_target(self) -> tuple[str, str | None]:
        session = self.session()
        url = load_config().url("transactions").replace("http", "ws", 1) + "/ws"
        return url, session.token if session and session.customer_id else None

    # --- notifications --------------------------------------------------------------------------------------

    def announce(self, message: str) -> None:
        """Print a notification now if the prompt is waiting (then redraw it), else hold it back."""
        with self.lock:
            if not self.waiting_at_prompt:
                self.held_notices.append(message)
                return
            sys.stdout.write("\r\x1b[2K")
            console.print(message)
            sys.stdout.write(self.prompt + self.editor.typed())
            sys.stdout.flush()

    def _show_held_notices(self) -> None:
        with self.lock:
            notices, self.held_notices = self.held_notices, []
        for notice in notices:
            console.print(notice)

    def _banner(self) -> None:
        session = self.session()
        who = (
            f"logged in as [bold]{session.username}[/] ({session.role})"
            if session
            else "not logged in: type [bold]login[/]"
        )
        console.print(f"[bold]banking-cli interactive[/] — {who}.")
        console.print(
            "New here? Type [bold]menu[/]. [bold]help[/] lists the commands, Tab completes them and your "
            "account ids, [bold]quit[/] or Ctrl-D leaves."
        )
        console.print(
            f"[dim]Transfers touching your accounts are announced here as they are decided (pushed; "
            f"checked every {self.watcher.poll_s:g} s when the push channel is down).[/]"
        )
        if not self.editor.available:
            console.print("[dim](no readline on this system: no history or completion)[/]")


def run_shell(app: typer.Typer, *, poll_s: float) -> None:
    Shell(app, poll_s).run()
