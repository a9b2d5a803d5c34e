"""Working days (hari kerja): Monday to Friday minus national holidays, cuti bersama and the
city's local holidays. The calendar is data: the shipped year plus files and dates an operator
adds for the next year or for local holidays."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SHIPPED_CALENDAR = Path(__file__).parent / "holidays.json"


class CalendarError(ValueError):
    """A holiday file is not in the expected shape; the message names the file and entry."""


def read_holidays(path: Path) -> frozenset[date]:
    """Days off from a file shaped `{"<year>": {"<kind>": ["YYYY-MM-DD", ...]}}`; keys that
    start with `_` are comments."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CalendarError(f"{path}: {exc}") from None
    days: set[date] = set()
    if not isinstance(document, dict):
        raise CalendarError(f"{path}: expected an object of years")
    for year, kinds in document.items():
        if year.startswith("_"):
            continue
        if not isinstance(kinds, dict):
            raise CalendarError(f"{path}: {year} must map kinds of holiday to lists of dates")
        for kind, values in kinds.items():
            for value in values if isinstance(values, list) else [values]:
                try:
                    day = date.fromisoformat(str(value))
                except ValueError:
                    raise CalendarError(f"{path}: {year}.{kind}: {value!r} is not a date") from None
                if str(day.year) != year:
                    raise CalendarError(f"{path}: {value} is listed under {year}")
                days.add(day)
    return frozenset(days)


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date]
    timezone: ZoneInfo

    @classmethod
    def load(
        cls, timezone: str, files: Iterable[Path] = (), extra: Iterable[date] = ()
    ) -> WorkingCalendar:
        holidays = set(read_holidays(SHIPPED_CALENDAR))
        for path in files:
            holidays |= read_holidays(path)
        holidays |= set(extra)
        return cls(frozenset(holidays), ZoneInfo(timezone))

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (`day` itself is not counted)."""
        while count > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day

    def deadline(self, now: datetime, working_days: int) -> datetime:
        """The end of the `working_days`-th working day after today (local time), as the
        instant the next day starts: someone asked on Friday has until Wednesday night."""
        today = now.astimezone(self.timezone).date()
        last = self.add_working_days(today, working_days)
        return datetime.combine(last + timedelta(days=1), time(0), tzinfo=self.timezone)
