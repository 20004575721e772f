"""What the profile exposes to segments and destinations, with each attribute's type.

The types matter for the destination guardrail: array- and map-typed attributes may not be mapped
to Marketo person fields. Column names are the warehouse's profile columns.
"""

PERSON_ATTRIBUTES: dict[str, str] = {
    "email": "string",
    "first_name": "string",
    "last_name": "string",
    "title": "string",
    "company": "string",
    "unsubscribed": "boolean",
    "created_at": "datetime",
    "updated_at": "datetime",
    "source_keys": "array",      # every source record stitched into the person
    "identity_map": "map",       # namespace -> identity values
}

ACCOUNT_ATTRIBUTES: dict[str, str] = {
    "name": "string",
    "website": "string",
    "industry": "string",
    "annual_revenue": "number",
    "employees": "number",
    "closed_won_amount": "number",
    "open_pipeline_amount": "number",
    "opportunity_count": "number",
    "last_close_date": "date",
}

EVENT_FIELDS: dict[str, str] = {
    "url": "string",             # the page for web visits (Marketo primary attribute value)
    "primary_value": "string",   # the activity's primary attribute value, whatever its type
}

# operator -> how many values it takes
OPERATORS: dict[str, str] = {
    "eq": "one", "ne": "one", "gt": "one", "gte": "one", "lt": "one", "lte": "one",
    "contains": "one", "starts_with": "one", "ends_with": "one",
    "in": "list", "not_in": "list",
    "exists": "none", "not_exists": "none",
}
