"""The orders service's clock: real time, or, on test and demo platforms only, the time held in
a file an operator sets (`ORDERS_CLOCK_FILE`), so working-day deadlines can be seen passing
without waiting for them. Off unless configured; nothing over HTTP can move it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.logging import get_logger

log = get_logger(__name__)

ClockSetting = datetime | timedelta
"""A fixed instant (time stands still there) or a shift added to real time."""


class ClockFileError(ValueError):
    """The clock file cannot be read or does not hold a time; the message says why."""


def real_now() -> datetime:
    return datetime.now(UTC)


def parse_clock(text: str) -> ClockSetting:
    """A clock file's content: an ISO-8601 instant with its UTC offset
    (`2026-03-17T10:00:00+07:00`), or a signed number of seconds added to real time
    (`+86400`, `-3600.5`)."""
    value = text.strip()
    if not value:
        raise ClockFileError("the file is empty (delete it to return to real time)")
    if value[0] in "+-":
        try:
            shift = timedelta(seconds=float(value))
        except (ValueError, OverflowError):
            raise ClockFileError(f"{value[:40]!r} is not a signed number of seconds") from None
        return shift
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ClockFileError(
            f"{value[:40]!r} is neither an ISO-8601 instant nor a signed number of seconds"
        ) from None
    if instant.utcoffset() is None:
        raise ClockFileError(f"{value[:40]!r} has no UTC offset (write e.g. +07:00 or Z)")
    return instant


def read_clock_file(path: Path) -> ClockSetting | None:
    """The setting in `path`; None (real time) when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClockFileError(f"{path}: {exc}") from None
    try:
        return parse_clock(text)
    except ClockFileError as exc:
        raise ClockFileError(f"{path}: {exc}") from None


class FileClock:
    """Now, as the clock file says. The file is read again only when it changes (one `stat` per
    call); a file that does not parse is logged and the last good setting kept. Replace the file
    (write another and rename it over) rather than rewriting it in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._setting = read_clock_file(path)
        if self._setting is not None:
            log.warning("orders.clock_file", path=str(path), setting=_describe(self._setting))

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    def __call__(self) -> datetime:
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            self._reload()
        setting = self._setting
        if setting is None:
            return real_now()
        if isinstance(setting, timedelta):
            return real_now() + setting
        return setting

    def _reload(self) -> None:
        try:
            setting = read_clock_file(self.path)
        except ClockFileError as exc:
            log.error("orders.clock_file_refused", reason=str(exc), keeps=_describe(self._setting))
            return
        self._setting = setting
        # A moved clock is worth a warning (never on a production platform); real time is not.
        report = log.info if setting is None else log.warning
        report("orders.clock_file", path=str(self.path), setting=_describe(setting))


def _describe(setting: ClockSetting | None) -> str:
    if setting is None:
        return "real time"
    if isinstance(setting, timedelta):
        return f"real time {setting.total_seconds():+g}s"
    return setting.isoformat()
