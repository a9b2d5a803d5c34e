"""Working days: weekends, the 2026 national holidays and cuti bersama, local additions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.orders.workdays import CalendarError, WorkingCalendar, read_holidays


@pytest.fixture
def calendar() -> WorkingCalendar:
    return WorkingCalendar.load("Asia/Jakarta")


def test_the_shipped_2026_calendar_has_17_holidays_and_8_cuti_bersama() -> None:
    days = read_holidays(Path("services/orders/holidays.json"))
    assert len(days) == 25
    assert date(2026, 8, 17) in days and date(2026, 12, 24) in days


def test_three_working_days_from_a_monday_are_thursday(calendar: WorkingCalendar) -> None:
    assert calendar.add_working_days(date(2026, 6, 8), 3) == date(2026, 6, 11)


def test_a_friday_deadline_crosses_the_weekend(calendar: WorkingCalendar) -> None:
    assert calendar.add_working_days(date(2026, 7, 10), 3) == date(2026, 7, 15)


def test_idul_fitri_2026_holidays_and_cuti_bersama_are_skipped(calendar: WorkingCalendar) -> None:
    # Friday 13 March: Mon 16 and Tue 17 count; 18 to 24 March are cuti bersama, holidays
    # and a weekend; Wednesday 25 March is the third working day.
    assert calendar.add_working_days(date(2026, 3, 13), 3) == date(2026, 3, 25)


def test_the_deadline_is_the_end_of_the_last_working_day_in_jakarta(
    calendar: WorkingCalendar,
) -> None:
    # 20:00 UTC on Friday 13 March is already Saturday 14 March in Jakarta.
    deadline = calendar.deadline(datetime(2026, 3, 13, 20, 0, tzinfo=UTC), 3)
    assert deadline == datetime(2026, 3, 26, 0, 0, tzinfo=calendar.timezone)
    assert deadline.astimezone(UTC) == datetime(2026, 3, 25, 17, 0, tzinfo=UTC)


def test_local_holidays_extend_the_calendar(tmp_path: Path) -> None:
    extra = tmp_path / "pekalongan.json"
    extra.write_text(json.dumps({"2026": {"hari_jadi_kota": ["2026-04-01"]}}))
    calendar = WorkingCalendar.load("Asia/Jakarta", [extra], [date(2026, 4, 2)])
    # 31 March (Tue); 1 and 2 April local; 3 April Good Friday; 6 April is the second day.
    assert calendar.add_working_days(date(2026, 3, 31), 2) == date(2026, 4, 7)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected an object of years"),
        ({"2026": ["2026-01-01"]}, "must map kinds"),
        ({"2026": {"x": ["2026-13-01"]}}, "is not a date"),
        ({"2026": {"x": ["2027-01-01"]}}, "is listed under 2026"),
    ],
)
def test_a_malformed_calendar_names_the_problem(
    tmp_path: Path, document: object, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CalendarError, match=message):
        read_holidays(path)
