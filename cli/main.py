"""banking-cli: the entry point that gathers every command.

Every failure ends as one line on stderr and an exit code that means something (cli.core.errors). Heavy
modules (PyJWT, aiohttp, the shell, rich's progress bar, harness) are imported only by the commands
that need them, so starting the CLI stays fast.
"""

from __future__ import annotations

import os

import typer
from typer.core import TyperGroup

from cli.commands import auth as auth_commands
from cli.commands import everyday as commands
from cli.commands.bench import bench
from cli.commands.check import check
from cli.commands.health import health
from cli.commands.tokens import tokens
from cli.commands.trace import trace
from cli.commands.up import up
from cli.core.errors import EXIT_OTHER, EXIT_USAGE, CliError
from cli.demos.app import demo_app

DEBUG_VARIABLE = "BANKING_CLI_DEBUG"


def report_error(error: CliError) -> None:
    """One line on stderr: what went wrong, and what to do about it when we know."""
    line = f"error: {error.message}" + (f" ({error.hint})" if error.hint else "")
    typer.echo(typer.style(line, fg="red"), err=True)


class BankingGroup(TyperGroup):
    """Turns every CliError (and any surprise) into one line and its exit code, never a traceback."""

    # typer annotates the Context of its private copy of click, whose public face is typer.Context; ctx is
    # only handed on to super(), so the narrower public name is safe here.
    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CliError as error:
            report_error(error)
            raise typer.Exit(error.exit_code) from None
        except typer.TyperException as error:  # a usage error: one line too, with where to find help
            if error.exit_code != EXIT_USAGE or not error.format_message():  # no message: help was shown
                raise
            command_path = getattr(getattr(error, "ctx", None), "command_path", None) or "banking-cli"
            report_error(CliError(error.format_message(), hint=f"see: {command_path} --help"))
            raise typer.Exit(EXIT_USAGE) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as error:  # a bug: say so in one line, show the traceback only on request
            if os.environ.get(DEBUG_VARIABLE):
                raise
            report_error(
                CliError(
                    f"unexpected {type(error).__name__}: {error}", hint=f"set {DEBUG_VARIABLE}=1 for the traceback"
                )
            )
            raise typer.Exit(EXIT_OTHER) from None


app = typer.Typer(
    name="banking-cli",
    cls=BankingGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main() -> None:
    """Talk to the banking system: log in, move money, watch the two-phase commit.

    Start with: banking-cli login -u alice, then banking-cli accounts (or banking-cli interactive).

    Settings come from the environment, or the same keys in lower case in the config file:
      CUSTOMER_SERVICE_URL, ACCOUNTS_SERVICE_URL, TRANSACTIONS_SERVICE_URL (default 127.0.0.1:3001-3003)
      TOKEN_FILE (default ~/.banking-cli/token), JWT_SECRET (for tokens and the demos)
      BANKING_CLI_CONFIG: the config file (default ~/.config/banking-cli/config.toml)

    Exit codes: 0 ok, 1 other error, 2 bad input, 3 not logged in or not allowed,
    4 not found, 5 refused (transfer aborted, conflict), 6 service unavailable.
    """


app.command(name="up")(up)
app.command()(auth_commands.login)
app.command()(auth_commands.logout)
app.command()(auth_commands.whoami)
app.command()(commands.profile)
app.command()(commands.accounts)
app.command()(commands.balance)
app.command()(commands.transfer)
app.command()(commands.history)
app.command()(commands.transaction)
app.command()(commands.audit)
app.command()(health)
app.command()(tokens)
app.command()(trace)
app.command()(bench)
app.command()(check)
app.add_typer(demo_app, name="demo")


@app.command()
def interactive(
    poll_s: float = typer.Option(3.0, "--poll", min=0.5, max=300, help="Seconds between checks for new transfers."),
) -> None:
    """Open an interactive shell: history, completion of commands and your account ids, a menu, live notifications.

    Every CLI command works inside it (without the `banking-cli` prefix); `menu` guides newcomers.

    Example: banking-cli interactive
    """
    from cli.shell.interactive import run_shell

    run_shell(app, poll_s=poll_s)


if __name__ == "__main__":
    app()
