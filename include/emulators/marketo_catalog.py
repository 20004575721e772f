"""Static Marketo metadata: activity types, the standard fields of each object, type guessing."""

from __future__ import annotations

import re

from .timeutil import try_parse_datetime

_WEB = [("Client IP Address", "string"), ("Query Parameters", "string"), ("Referrer URL", "string"),
        ("User Agent", "string")]
_EMAIL = [("Campaign Run ID", "integer"), ("Choice Number", "integer"), ("Step ID", "integer")]

# (id, name, description, primary attribute or None, attributes); ids and names are Marketo's.
_ACTIVITY_TYPES = [
    (1, "Visit Webpage", "User visits a web page", ("Webpage ID", "integer"),
     _WEB + [("Search Engine", "string"), ("Search Query", "string"), ("Webpage URL", "string")]),
    (2, "Fill Out Form", "User fills out and submits a form on web page", ("Webform ID", "integer"),
     _WEB + [("Form Fields", "text"), ("Webpage ID", "integer")]),
    (3, "Click Link", "User clicks link on a page", ("Link ID", "integer"),
     _WEB + [("Webpage ID", "integer")]),
    (6, "Send Email", "Send Marketo Email to a person", ("Mailing ID", "integer"), list(_EMAIL)),
    (7, "Email Delivered", "Marketo Email is delivered to a person", ("Mailing ID", "integer"), list(_EMAIL)),
    (9, "Unsubscribe Email", "Person unsubscribed from Marketo Emails", ("Mailing ID", "integer"),
     [("Campaign Run ID", "integer")] + _WEB + [("Form Fields", "text"), ("Webform ID", "integer"),
                                                ("Webpage ID", "integer")]),
    (10, "Open Email", "User opens Marketo Email", ("Mailing ID", "integer"),
     _EMAIL + [("Device", "string"), ("Is Mobile Device", "boolean"), ("Platform", "string"),
               ("User Agent", "string")]),
    (11, "Click Email", "User clicks on a link in a Marketo Email", ("Mailing ID", "integer"),
     _EMAIL + [("Device", "string"), ("Is Mobile Device", "boolean"), ("Link", "string"),
               ("Platform", "string"), ("User Agent", "string")]),
    (12, "New Lead", "New person", None,
     [("Created Date", "date"), ("Form Name", "string"), ("Lead Source", "string"), ("List Name", "string"),
      ("SFDC Type", "string"), ("Source Type", "string")]),
    (13, "Change Data Value", "Changed attribute value for a person", ("Attribute Name", "integer"),
     [("New Value", "text"), ("Old Value", "text"), ("Reason", "string"), ("Source", "string")]),
    (24, "Add to List", "Person added to a list", ("List ID", "integer"),
     [("Source", "string")]),
    (25, "Remove from List", "Person removed from a list", ("List ID", "integer"),
     [("Source", "string")]),
    (37, "Delete Lead", "Delete person from the database", ("Lead ID", "integer"),
     [("Remove from CRM", "boolean")]),
]


def activity_types() -> list[dict]:
    types = []
    for type_id, name, description, primary, attributes in _ACTIVITY_TYPES:
        entry = {"id": type_id, "name": name, "description": description}
        if primary:
            entry["primaryAttribute"] = {"name": primary[0], "dataType": primary[1]}
        entry["attributes"] = [{"name": n, "dataType": t} for n, t in attributes]
        types.append(entry)
    return types


ACTIVITY_TYPE_IDS = {t[0] for t in _ACTIVITY_TYPES}
DELETE_LEAD_TYPE = 37

# Standard fields known even when no scenario record carries them (a real instance always has them).
LEAD_FIELDS = ["id", "email", "firstName", "lastName", "title", "company", "sfdcType", "sfdcContactId",
               "sfdcAccountId", "sfdcLeadId", "externalCompanyId", "unsubscribed", "createdAt", "updatedAt"]
LEAD_DEFAULT_FIELDS = ["id", "email", "updatedAt", "createdAt", "firstName", "lastName"]
LEAD_READ_ONLY = {"id", "createdAt", "updatedAt", "sfdcType", "sfdcContactId", "sfdcAccountId", "sfdcLeadId"}

ACTIVITY_COLUMNS = ["marketoGUID", "leadId", "activityDate", "activityTypeId", "campaignId",
                    "primaryAttributeValueId", "primaryAttributeValue", "attributes"]
ACTIVITY_OPTIONAL_COLUMNS = ["actionResult"]

# Companies, opportunities, roles and named accounts share one query/describe pattern.
B2B_OBJECTS = {
    "companies": {
        "name": "Company", "section": "companies", "idField": "id", "dedupeFields": ["externalCompanyId"],
        "searchableFields": [["externalCompanyId"], ["id"], ["company"]],
        "fields": ["id", "externalCompanyId", "company", "website", "industry", "annualRevenue",
                   "numberOfEmployees", "createdAt", "updatedAt"],
    },
    "opportunities": {
        "name": "Opportunity", "section": "opportunities", "idField": "marketoGUID",
        "dedupeFields": ["externalOpportunityId"],
        "searchableFields": [["externalOpportunityId"], ["marketoGUID"], ["externalCompanyId"]],
        "fields": ["marketoGUID", "externalOpportunityId", "externalCompanyId", "name", "amount", "isClosed",
                   "isWon", "stage", "closeDate", "createdAt", "updatedAt"],
    },
    "opportunities/roles": {
        "name": "Opportunity Role", "section": "opportunity_roles", "idField": "marketoGUID",
        "dedupeFields": ["externalOpportunityId", "leadId", "role"],
        "searchableFields": [["marketoGUID"], ["externalOpportunityId"], ["leadId"]],
        "fields": ["marketoGUID", "externalOpportunityId", "leadId", "role", "isPrimary", "createdAt",
                   "updatedAt"],
    },
    "namedaccounts": {
        "name": "Named Account", "section": "named_accounts", "idField": "marketoGUID", "dedupeFields": ["name"],
        "searchableFields": [["name"], ["marketoGUID"], ["domainName"]],
        "fields": ["marketoGUID", "name", "domainName", "annualRevenue", "numberOfEmployees", "createdAt",
                   "updatedAt"],
    },
}


def field_catalog(standard: list[str], records: list[dict]) -> list[str]:
    """Standard fields first, then every other field seen on a record, in first-seen order."""
    names = list(standard)
    seen = set(names)
    for record in records:
        for name in record:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names


def guess_data_type(name: str, values: list) -> str:
    if name == "id":
        return "integer"
    if name.lower() == "email":
        return "email"
    present = [v for v in values if v is not None]
    if not present:
        return "string"
    if all(isinstance(v, bool) for v in present):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "integer"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    if all(isinstance(v, str) and try_parse_datetime(v) for v in present):
        return "datetime"
    if all(isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in present):
        return "date"
    return "string"


def display_name(name: str) -> str:
    """'firstName' -> 'First Name', 'sfdcContactId' -> 'Sfdc Contact Id'."""
    if name == "email":
        return "Email Address"
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


class MarketoError(Exception):
    """A failure Marketo reports as HTTP 200 with success=false and a quoted numeric code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
