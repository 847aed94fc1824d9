"""`banking-cli demo race-condition` and `demo concurrent`: why the two-phase commit matters, shown live.

Each run opens fresh accounts for the demo customers, so it can run again and again and always ends
with correct verdicts. The exit code is 0 when every two-phase-commit verdict holds; the unsafe
endpoint's lost updates are the point of the demonstration, not a failure.
"""

from __future__ import annotations

import random

import typer

from cli.core.config import load_config
from cli.core.errors import CliError
from cli.core.render import console
from cli.demos.bank import DemoBank, check_services
from cli.demos.concurrent import customers_run, high_concurrency_run, mixed_run
from cli.demos.race import two_phase_race, unsafe_race

demo_app = typer.Typer(help="Live demonstrations: lost updates without 2PC, exact books with it.", no_args_is_help=True)

LOGIN_OPTION = typer.Option(
    False, "--login", help="Log in as the demo users (admin/admin123, ...) instead of minting tokens from JWT_SECRET."
)
DEFAULT_TRANSFERS = 200
MIN_HIGH_CONCURRENCY_TRANSFERS = 100
MAX_TRANSFERS = 10_000
DEFAULT_CONCURRENCY = 20
MAX_CONCURRENCY = 100


def _start(use_logins: bool) -> DemoBank:
    config = load_config()
    check_services(config)
    bank = DemoBank(config, use_logins=use_logins)
    if not use_logins:
        bank.check_tokens()
    return bank


def _finish(results: list[bool]) -> None:
    if not all(results):
        raise CliError(f"{results.count(False)} two-phase-commit verdict(s) failed; see above")
    console.print("\n[bold]All two-phase-commit verdicts hold.[/]")


@demo_app.command("race-condition")
def race_condition(use_logins: bool = LOGIN_OPTION) -> None:
    """Two withdrawals of 100 from 150 at the same moment: a lost update without locks, exactly one with 2PC.

    Opens fresh accounts for Alice and Bob; needs the accounts service's demo endpoint (DEMO_ENDPOINTS=true,
    which `banking-cli up` sets).

    Example: banking-cli demo race-condition
    """
    bank = _start(use_logins)
    unsafe_race(bank)
    _finish([two_phase_race(bank)])


@demo_app.command("concurrent")
def concurrent(
    transfers: int = typer.Option(
        DEFAULT_TRANSFERS,
        "--transfers",
        "-n",
        min=MIN_HIGH_CONCURRENCY_TRANSFERS,
        max=MAX_TRANSFERS,
        help="Transfers in the high-concurrency run.",
    ),
    concurrency: int = typer.Option(
        DEFAULT_CONCURRENCY, "--concurrency", "-c", min=1, max=MAX_CONCURRENCY, help="Requests in flight at once."
    ),
    seed: int = typer.Option(None, "--seed", help="Seed the random amounts and pairs, to repeat a run exactly."),
    use_logins: bool = LOGIN_OPTION,
) -> None:
    """Three concurrent runs, each ending with expected and actual balances, the money total and a verdict.

    1. concurrent transfers between Alice, Bob and Carol (each paying with their own login);
    2. a mixed run: 2PC transfers and unsafe withdrawals on the same account at once;
    3. a high-concurrency run of many transfers among six accounts, with a progress bar.

    Examples:
      banking-cli demo concurrent
      banking-cli demo concurrent --transfers 500 --concurrency 50 --seed 7
    """
    bank = _start(use_logins)
    rng = random.Random(seed)
    _finish(
        [
            customers_run(bank, rng, concurrency),
            mixed_run(bank),
            high_concurrency_run(bank, rng, transfers, concurrency),
        ]
    )
