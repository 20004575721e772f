"""Date-time parsing and formatting shared by the emulators."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

# Marketo resets its daily quotas at midnight US Central ("12:00AM CST" in the docs): the civil day in
# America/Chicago, daylight saving time included. A fixed CST offset only if no tz database is installed.
try:
    from zoneinfo import ZoneInfo
    CENTRAL = ZoneInfo("America/Chicago")
except Exception:  # pragma: no cover - no tz database on this machine
    CENTRAL = timezone(timedelta(hours=-6), "CST")

_OFFSET_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_datetime(value: str) -> datetime:
    """Parse ISO-8601 as both APIs write it ('Z', '+0000', '+00:00', optional millis).

    Naive values are taken as UTC so comparisons never mix naive and aware datetimes.
    Raises ValueError on anything else.
    """
    if not isinstance(value, str) or "T" not in value:
        raise ValueError(f"not an ISO-8601 date-time: {value!r}")
    if value[-1:] == "Z":
        # How both APIs write UTC; Python 3.11 reads the Z itself (anything else takes the long way).
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    else:
        text = _OFFSET_NO_COLON.sub(r"\1:\2", text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def try_parse_datetime(value) -> datetime | None:
    try:
        return parse_datetime(value)
    except (TypeError, ValueError):
        return None


def parse_date(value: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"not an ISO-8601 date: {value!r}")
    return date.fromisoformat(value)


def format_marketo(moment: datetime) -> str:
    """Marketo writes date-times in UTC without milliseconds: 2026-11-20T12:00:00Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_salesforce(moment: datetime) -> str:
    """Salesforce writes date-times as 2026-11-20T12:00:00.000+0000."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def central_day(moment: datetime) -> str:
    return moment.astimezone(CENTRAL).date().isoformat()


def next_central_midnight(moment: datetime) -> datetime:
    """The first instant (UTC) of the Central day after the one `moment` falls in."""
    local = moment.astimezone(CENTRAL)
    following = (local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None) + timedelta(days=1))
    return following.replace(tzinfo=CENTRAL).astimezone(timezone.utc)


def format_salesforce_bulk(moment: datetime) -> str:
    """Bulk API CSV results write date-times as 2026-11-20T12:00:00.000Z."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def ensure_aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
