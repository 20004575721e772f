"""Marketo's activity log as the incremental REST endpoints see it: paging tokens, Get Lead Activities,
Get Lead Changes and Get Deleted Leads.

Every activity has an integer `id` (Marketo's, ordered by insertion) next to its `marketoGUID`. A paging
token is, as in Marketo, base32 of "<date-time>,<last id>": the position after which the next call
resumes, so a token handed back at the end of the log picks up activities recorded later.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone

from .marketo_catalog import DELETE_LEAD_TYPE, MarketoError
from .timeutil import format_marketo, parse_date, parse_datetime, try_parse_datetime

NEW_LEAD_TYPE = 12
CHANGE_DATA_VALUE_TYPE = 13
MAX_ACTIVITY_TYPES = 10
MAX_LEAD_IDS = 30
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
CHANGE_ATTRIBUTES = ("New Value", "Old Value")


def activity_time(activity: dict) -> datetime:
    return try_parse_datetime(activity.get("activityDate")) or EPOCH


def position_of(activity: dict) -> tuple[datetime, int]:
    return activity_time(activity), activity["id"]


def encode_token(position: tuple[datetime, int]) -> str:
    moment, last_id = position
    utc = moment.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000,{last_id}"
    return base64.b32encode(text.encode()).decode()


def decode_token(token: str | None) -> tuple[datetime, int]:
    if not token:
        raise MarketoError("1003", "nextPageToken is required (get one from /rest/v1/activities/pagingtoken.json)")
    try:
        padded = token.strip() + "=" * (-len(token.strip()) % 8)
        moment, _, last_id = base64.b32decode(padded.upper()).decode().rpartition(",")
        return parse_datetime(moment), int(last_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MarketoError("1003", "Invalid nextPageToken") from None


def since_position(value: str | None) -> tuple[datetime, int]:
    """The position of a sinceDatetime: just before anything recorded at or after that instant."""
    if not value:
        raise MarketoError("1003", "sinceDatetime is required")
    text = value.strip().replace(" ", "+")        # an unencoded '+' in a query string arrives as a space
    try:
        moment = parse_datetime(text)
    except ValueError:
        try:
            moment = datetime.combine(parse_date(text), datetime.min.time(), tzinfo=timezone.utc)
        except ValueError:
            raise MarketoError("1001", f"Invalid value '{value}'. Required of type 'datetime'") from None
    return moment, 0


def attribute_list(attributes) -> list[dict]:
    if attributes is None:
        return []
    if isinstance(attributes, dict):
        return [{"name": k, "value": v} for k, v in attributes.items()]
    return [dict(a) for a in attributes if isinstance(a, dict)]


def rest_view(activity: dict) -> dict:
    """An activity as Get Lead Activities returns it."""
    out = {"id": activity["id"], "marketoGUID": str(activity.get("marketoGUID") or activity["id"]),
           "leadId": activity.get("leadId"), "activityDate": activity.get("activityDate"),
           "activityTypeId": activity.get("activityTypeId")}
    for key in ("campaignId", "primaryAttributeValueId", "primaryAttributeValue"):
        if activity.get(key) is not None:
            out[key] = activity[key]
    out["attributes"] = attribute_list(activity.get("attributes"))
    return out


def lead_change_view(activity: dict) -> dict:
    """A Change Data Value (13) or New Lead (12) activity as Get Lead Changes returns it."""
    out = {"id": activity["id"], "marketoGUID": str(activity.get("marketoGUID") or activity["id"]),
           "leadId": activity.get("leadId"), "activityDate": activity.get("activityDate"),
           "activityTypeId": activity.get("activityTypeId")}
    attributes = attribute_list(activity.get("attributes"))
    if activity.get("activityTypeId") == CHANGE_DATA_VALUE_TYPE:
        values = {a["name"]: a.get("value") for a in attributes}
        out["fields"] = [{"id": activity.get("primaryAttributeValueId"),
                          "name": activity.get("_field") or activity.get("primaryAttributeValue"),
                          "newValue": values.get("New Value"), "oldValue": values.get("Old Value")}]
        attributes = [a for a in attributes if a["name"] not in CHANGE_ATTRIBUTES]
    else:
        out["fields"] = []
    out["attributes"] = attributes + [{"name": "Lead ID", "value": activity.get("leadId")}]
    return out


def deleted_view(entry: dict) -> dict:
    out = rest_view(entry)
    out["attributes"] = []
    return out


def page_after(candidates: list[dict], position: tuple[datetime, int], batch: int):
    """(page, next position, more) for the activities after `position`, in (activityDate, id) order."""
    after = sorted((a for a in candidates if position_of(a) > position), key=position_of)
    page = after[:batch]
    following = position_of(page[-1]) if page else position
    return page, following, len(after) > batch


def envelope(request_id: str, page: list[dict], position, more: bool) -> dict:
    body = {"requestId": request_id}
    if page:                                   # Marketo leaves `result` out of an empty page
        body["result"] = page
    body.update({"success": True, "nextPageToken": encode_token(position), "moreResult": more})
    return body


def assign_ids(activities: list[dict], deleted: list[dict]) -> int:
    """Give every scenario activity and delete-log entry an integer id, in (date, file order) order,
    keeping ids the scenario set itself. Returns the last id handed out."""
    explicit = [a["id"] for a in activities + deleted
                if isinstance(a.get("id"), int) and not isinstance(a.get("id"), bool)]
    next_id = max(explicit, default=0)
    ordered = sorted(enumerate(activities + deleted), key=lambda pair: (activity_time(pair[1]), pair[0]))
    for _, activity in ordered:
        if not isinstance(activity.get("id"), int) or isinstance(activity.get("id"), bool):
            next_id += 1
            activity["id"] = next_id
    return next_id


def deleted_entry(record: dict, entry_id: int | None, when: str) -> dict:
    """A Delete Lead (37) entry of the delete log, from a scenario `deleted_leads` record or a lead."""
    name = " ".join(str(record[k]) for k in ("firstName", "lastName") if record.get(k)) or None
    entry = {"leadId": record["id"], "activityDate": when, "activityTypeId": DELETE_LEAD_TYPE,
             "primaryAttributeValueId": record["id"], "primaryAttributeValue": name, "attributes": []}
    if entry_id is not None:
        entry["id"] = entry_id
        entry["marketoGUID"] = str(entry_id)
    return entry


def scenario_deleted_entries(records: list[dict], default_when: datetime) -> list[dict]:
    entries = []
    for record in records:
        when = try_parse_datetime(record.get("deletedAt")) or default_when
        entries.append(deleted_entry(record, None, format_marketo(when)))
    return entries
