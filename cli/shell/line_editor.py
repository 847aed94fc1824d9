"""Line editing for the interactive shell: readline when the system has it, with Tab completion and a
history file readable by its owner only; plain input() when it has not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

HISTORY_LENGTH = 1000
HISTORY_FILE_MODE = 0o600
# Given the words before the cursor and the word being typed: the completions.
Completer = Callable[[list[str], str], list[str]]


class LineEditor:
    def __init__(self, history_file: Path, completer: Completer) -> None:
        self.history_file = history_file
        self.completer = completer
        self.readline: Any = _readline()
        self._matches: list[str] = []

    @property
    def available(self) -> bool:
        return self.readline is not None

    def start(self) -> None:
        if self.readline is None:
            return
        # Only whitespace separates words: ids and options contain '-', which readline splits on by default.
        self.readline.set_completer_delims(" \t\n")
        self.readline.set_completer(self._complete)
        self.readline.parse_and_bind("tab: complete")
        self.readline.set_history_length(HISTORY_LENGTH)
        try:
            self.readline.read_history_file(self.history_file)
        except OSError:
            pass

    def save(self) -> None:
        if self.readline is None:
            return
        try:
            self.history_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.history_file.touch(mode=HISTORY_FILE_MODE)
            self.readline.write_history_file(self.history_file)
        except OSError:
            pass  # no history next time is not worth an error on the way out

    def typed(self) -> str:
        """What the user has typed at the prompt so far."""
        return self.readline.get_line_buffer() if self.readline is not None else ""

    def forget_last_line(self) -> None:
        """Drop the line just typed from the history: a password, or an answer to a menu question."""
        if self.readline is not None and self.readline.get_current_history_length() > 0:
            self.readline.remove_history_item(self.readline.get_current_history_length() - 1)

    def remember(self, line: str) -> None:
        if self.readline is not None:
            self.readline.add_history(line)

    def _complete(self, text: str, state: int) -> str | None:
        if state == 0:
            before = self.readline.get_line_buffer()[: self.readline.get_begidx()]
            self._matches = self.completer(before.split(), text)
        return self._matches[state] if state < len(self._matches) else None


def _readline() -> Any:
    try:
        import readline
    except ImportError:
        return None
    return readline
