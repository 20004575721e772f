"""Load and validate a scenario file (format: scenarios/FORMAT.md).

Validation is strict about structure (a typo must not silently drop data) and lenient about record
fields, which mirror the APIs and may carry any custom field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import json

import yaml

from .timeutil import format_marketo, format_salesforce, parse_datetime

TOP_KEYS = {"clock", "marketo", "salesforce", "mdm", "web_events"}
MARKETO_KEYS = {
    "munchkin_id", "crm", "leads", "companies", "opportunities", "opportunity_roles",
    "named_accounts", "static_lists", "activities", "deleted_leads",
}
CRM_KEYS = {"type", "org_id"}
STATIC_LIST_KEYS = {"id", "name", "description", "programName"}
SALESFORCE_OBJECTS = (
    "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Campaign", "CampaignMember",
)
SALESFORCE_KEYS = {"org_id", "name", *SALESFORCE_OBJECTS}
MDM_KEYS = {"accounts"}
MDM_ACCOUNT_KEYS = {"mdm_id", "name", "members", "linkedin_organization_urn"}

# Record sections of a Marketo instance and the field each record must carry (its identity).
MARKETO_RECORD_IDS = {
    "leads": "id",
    "companies": "id",
    "opportunities": "marketoGUID",
    "opportunity_roles": "marketoGUID",
    "named_accounts": "marketoGUID",
    "activities": "marketoGUID",
    "deleted_leads": "id",
}

MUNCHKIN_RE = re.compile(r"\d{3}-[A-Z]{3}-\d{3}")
ORG_ID_RE = re.compile(r"00D[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?")


@dataclass(frozen=True)
class Scenario:
    clock: datetime
    marketo: list[dict] = field(default_factory=list)
    salesforce: list[dict] = field(default_factory=list)
    mdm_accounts: list[dict] = field(default_factory=list)
    web_events: list[dict] = field(default_factory=list)


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        try:
            # JSON scenarios load with the json module: far faster than YAML for large volumes.
            document = json.load(handle) if path.suffix == ".json" else yaml.safe_load(handle)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not valid YAML/JSON: {exc}") from exc
    return parse_scenario(document)


def parse_scenario(document) -> Scenario:
    if document is None:
        document = {}
    _mapping(document, "scenario")
    _known_keys(document, TOP_KEYS, "")

    clock = document.get("clock")
    if clock is None:
        clock_dt = datetime.now(timezone.utc).replace(microsecond=0)
    else:
        clock_dt = _datetime(clock, "clock")

    marketo = [_marketo_instance(item, f"marketo[{i}]") for i, item in enumerate(_list(document, "marketo", ""))]
    _unique([m["munchkin_id"] for m in marketo], "marketo", "munchkin_id")

    salesforce = [_salesforce_org(item, f"salesforce[{i}]") for i, item in enumerate(_list(document, "salesforce", ""))]
    _unique([s["org_id"] for s in salesforce], "salesforce", "org_id")

    mdm_accounts = _mdm(document.get("mdm"))

    web_events = []
    for i, event in enumerate(_list(document, "web_events", "")):
        _mapping(event, f"web_events[{i}]")
        web_events.append(_normalise(event, format_marketo))

    return Scenario(clock=clock_dt, marketo=marketo, salesforce=salesforce,
                    mdm_accounts=mdm_accounts, web_events=web_events)


def _marketo_instance(item, path: str) -> dict:
    _mapping(item, path)
    _known_keys(item, MARKETO_KEYS, path)
    munchkin = item.get("munchkin_id")
    if not isinstance(munchkin, str) or not MUNCHKIN_RE.fullmatch(munchkin):
        raise ValueError(f"{path}.munchkin_id: expected a munchkin id like '111-AAA-111', got {munchkin!r}")
    instance = {"munchkin_id": munchkin, "crm": None}

    crm = item.get("crm")
    if crm is not None:
        _mapping(crm, f"{path}.crm")
        _known_keys(crm, CRM_KEYS, f"{path}.crm")
        instance["crm"] = dict(crm)

    for section, id_field in MARKETO_RECORD_IDS.items():
        records = []
        for i, record in enumerate(_list(item, section, path)):
            record_path = f"{path}.{section}[{i}]"
            _mapping(record, record_path)
            if id_field not in record or record[id_field] is None:
                raise ValueError(f"{record_path}.{id_field}: required")
            if id_field == "id" and not _is_int(record[id_field]):
                raise ValueError(f"{record_path}.id: expected an integer, got {record[id_field]!r}")
            records.append(_normalise(record, format_marketo))
        _unique([r[id_field] for r in records], f"{path}.{section}", id_field)
        instance[section] = records

    for i, activity in enumerate(instance["activities"]):
        apath = f"{path}.activities[{i}]"
        if not _is_int(activity.get("activityTypeId")):
            raise ValueError(f"{apath}.activityTypeId: expected an integer")
        _datetime(activity.get("activityDate"), f"{apath}.activityDate")

    lists = []
    for i, entry in enumerate(_list(item, "static_lists", path)):
        lpath = f"{path}.static_lists[{i}]"
        _mapping(entry, lpath)
        _known_keys(entry, STATIC_LIST_KEYS, lpath)
        if not _is_int(entry.get("id")):
            raise ValueError(f"{lpath}.id: expected an integer")
        if not isinstance(entry.get("name"), str):
            raise ValueError(f"{lpath}.name: required")
        lists.append(dict(entry))
    _unique([entry["id"] for entry in lists], f"{path}.static_lists", "id")
    instance["static_lists"] = lists
    return instance


def _salesforce_org(item, path: str) -> dict:
    _mapping(item, path)
    _known_keys(item, SALESFORCE_KEYS, path, allow=lambda key: key.endswith("__c"))
    org_id = item.get("org_id")
    if not isinstance(org_id, str) or not ORG_ID_RE.fullmatch(org_id):
        raise ValueError(f"{path}.org_id: expected a 15 or 18 character id starting 00D, got {org_id!r}")
    org = {"org_id": org_id, "name": item.get("name") or org_id, "objects": {}}
    for key, value in item.items():
        if key in ("org_id", "name"):
            continue
        records = []
        for i, record in enumerate(_list(item, key, path)):
            rpath = f"{path}.{key}[{i}]"
            _mapping(record, rpath)
            if not isinstance(record.get("Id"), str):
                raise ValueError(f"{rpath}.Id: required")
            records.append(_normalise(record, format_salesforce))
        _unique([r["Id"] for r in records], f"{path}.{key}", "Id")
        org["objects"][key] = records
    return org


def _mdm(mdm) -> list[dict]:
    if mdm is None:
        return []
    _mapping(mdm, "mdm")
    _known_keys(mdm, MDM_KEYS, "mdm")
    accounts = []
    for i, account in enumerate(_list(mdm, "accounts", "mdm")):
        apath = f"mdm.accounts[{i}]"
        _mapping(account, apath)
        _known_keys(account, MDM_ACCOUNT_KEYS, apath)
        if not isinstance(account.get("mdm_id"), str):
            raise ValueError(f"{apath}.mdm_id: required")
        members = account.get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ValueError(f"{apath}.members: expected a list of source keys")
        # Any string: the MDM may hold a malformed URN, which the pipeline must refuse.
        urn = account.get("linkedin_organization_urn")
        if urn is not None and not isinstance(urn, str):
            raise ValueError(f"{apath}.linkedin_organization_urn: expected a string")
        accounts.append({"mdm_id": account["mdm_id"], "name": account.get("name"), "members": list(members),
                         "linkedin_organization_urn": urn})
    _unique([a["mdm_id"] for a in accounts], "mdm.accounts", "mdm_id")
    return accounts


# ---------------------------------------------------------------------------------------- helpers

def _known_keys(mapping: dict, allowed: set[str], path: str, allow=None) -> None:
    for key in mapping:
        if key not in allowed and not (allow and isinstance(key, str) and allow(key)):
            prefix = f"{path}." if path else ""
            raise ValueError(f"{prefix}{key}: unknown key")


def _mapping(value, path: str) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(value).__name__}")


def _list(mapping: dict, key: str, path: str) -> list:
    value = mapping.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        prefix = f"{path}." if path else ""
        raise ValueError(f"{prefix}{key}: expected a list, got {type(value).__name__}")
    return value


def _unique(values: list, path: str, key: str) -> None:
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{path}[{i}].{key}: duplicate value {value!r}")
        seen.add(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _datetime(value, path: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        return parse_datetime(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: expected an ISO-8601 date-time, got {value!r}") from None


def _normalise(record: dict, format_datetime) -> dict:
    """Turn values YAML parsed as dates/times (unquoted) back into the strings the API returns."""
    out = {}
    for key, value in record.items():
        if isinstance(value, datetime):
            value = format_datetime(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
        elif isinstance(value, date):
            value = value.isoformat()
        out[str(key)] = value
    return out
