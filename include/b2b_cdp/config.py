"""The one configuration loader: YAML -> validated pydantic models.

Shape errors (unknown keys, wrong types, dangling references) are raised here, at DAG parse time,
with the YAML path of the offending entry. Platform guardrails (topologies, mapping limits) are
checked separately by the Great Expectations checkpoints in b2b_cdp.guardrails, before data moves.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator,
                      model_validator)

from b2b_cdp.catalog import ACCOUNT_ATTRIBUTES, EVENT_FIELDS, PERSON_ATTRIBUTES, OPERATORS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "include" / "config" / "cdp.yaml"

NAME = r"^[a-z][a-z0-9_]*$"
MAX_VALUES_PER_CONDITION = 50


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the YAML path."""


def _known(name: str, catalog: dict, what: str) -> str:
    if name not in catalog:
        raise ValueError(f"unknown {what} {name!r}; use one of {sorted(catalog)}")
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- topology


class PlatformInstance(_Model):
    id: str = Field(pattern=NAME)
    sandboxes: list[Annotated[str, Field(pattern=NAME)]] = Field(min_length=1)


class Feed(_Model):
    """A source instance feeding one sandbox of one platform instance."""

    platform_instance: str
    sandbox: str


class CrmLink(_Model):
    type: Literal["Salesforce"]
    org_id: str = Field(pattern=r"^00D[0-9A-Za-z]{12,15}$")


class _Source(_Model):
    id: str = Field(pattern=NAME)
    feeds: list[Feed] = Field(min_length=1)


# Periods an hourly cron can keep evenly: `*/7` would run at :56 and again at :00.
SYNC_PERIODS_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


class _SyncedSource(_Source):
    # How often the incremental sync runs. Every minute keeps a change's way to the profile well
    # inside the 10-minute window; each run costs a few API calls (see the README's call budget).
    sync_every_minutes: int = 1

    @field_validator("sync_every_minutes")
    @classmethod
    def _divides_the_hour(cls, value: int) -> int:
        if value not in SYNC_PERIODS_MINUTES:
            raise ValueError(f"must be one of {', '.join(map(str, SYNC_PERIODS_MINUTES))} (a period that "
                             "divides the hour)")
        return value

    @property
    def sync_schedule(self) -> str:
        """The incremental sync's cron schedule."""
        every = self.sync_every_minutes
        return {1: "* * * * *", 60: "0 * * * *"}.get(every, f"*/{every} * * * *")


class MarketoSource(_SyncedSource):
    type: Literal["marketo"]
    munchkin_id: str = Field(pattern=r"^\d{3}-[A-Z]{3}-\d{3}$")
    conn_id: str
    crm: CrmLink | None = None
    backfill_start: datetime
    # Activity history often matters for less time than the leads (Marketo purges old activities):
    # the activity backfill may start later. Defaults to backfill_start.
    activities_backfill_start: datetime | None = None
    # The bulk export quota (shared by every export of the instance; 500 MB/day by default).
    daily_export_quota_mb: int = Field(default=500, gt=0)

    @property
    def system_key(self) -> str:
        return f"marketo:{self.munchkin_id}"


class SalesforceSource(_SyncedSource):
    type: Literal["salesforce"]
    org_id: str = Field(pattern=r"^00D[0-9A-Za-z]{12,15}$")
    conn_id: str
    api_version: str = Field(default="v60.0", pattern=r"^v\d+\.\d$")
    # Backfills read through Bulk API 2.0 query jobs (large objects, few calls) or REST query pages.
    backfill_api: Literal["bulk", "rest"] = "bulk"
    # Records can commit with a SystemModstamp earlier than one already seen: re-read this much.
    lookback_seconds: int = Field(default=600, ge=0)
    objects: list[Literal["Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole"]] = [
        "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole"]

    @property
    def system_key(self) -> str:
        return f"salesforce:{self.org_id}"


class MdmSource(_Source):
    type: Literal["mdm"]
    path: str


class WebEventsSource(_SyncedSource):
    """Experience events (ECID, email when known, timestamp, URL) dropped as JSON-lines files."""
    type: Literal["web_events"]
    path: str


Source = Annotated[Union[MarketoSource, SalesforceSource, MdmSource, WebEventsSource],
                   Field(discriminator="type")]


# --------------------------------------------------------------------------- segments


class Comparison(_Model):
    op: str
    value: Any = None

    @field_validator("op")
    @classmethod
    def _known_op(cls, op: str) -> str:
        if op not in OPERATORS:
            raise ValueError(f"unknown operator {op!r}; use one of {sorted(OPERATORS)}")
        return op

    @model_validator(mode="after")
    def _value_shape(self) -> "Comparison":
        arity = OPERATORS[self.op]
        if arity == "none" and self.value is not None:
            raise ValueError(f"operator {self.op!r} takes no value")
        if arity == "one" and (self.value is None or isinstance(self.value, (list, dict))):
            raise ValueError(f"operator {self.op!r} needs one scalar value")
        if arity == "list":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"operator {self.op!r} needs a non-empty list of values")
            if len(self.value) > MAX_VALUES_PER_CONDITION:
                raise ValueError(
                    f"{len(self.value)} values in one condition; at most {MAX_VALUES_PER_CONDITION}"
                )
        return self


class AttributeCondition(Comparison):
    name: str


class FieldCondition(Comparison):
    field: str

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        return _known(name, EVENT_FIELDS, "event field")


class OpportunityAggregate(Comparison):
    """An aggregate over the opportunities of the person's (stitched) accounts."""

    aggregate: Literal["sum", "count", "max"]
    field: Literal["amount"] | None = None
    won: bool | None = None
    closed: bool | None = None
    stages: list[str] | None = None

    @model_validator(mode="after")
    def _field_needed(self) -> "OpportunityAggregate":
        if self.aggregate in ("sum", "max") and self.field is None:
            raise ValueError(f"aggregate {self.aggregate!r} needs a field (amount)")
        return self


class AccountCondition(_Model):
    attribute: AttributeCondition | None = None
    opportunities: OpportunityAggregate | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "AccountCondition":
        if (self.attribute is None) == (self.opportunities is None):
            raise ValueError("an account condition has exactly one of: attribute, opportunities")
        if self.attribute is not None:
            _known(self.attribute.name, ACCOUNT_ATTRIBUTES, "account attribute")
        return self


class Window(_Model):
    days: int | None = Field(default=None, gt=0, le=3650)
    hours: int | None = Field(default=None, gt=0, le=87600)

    @model_validator(mode="after")
    def _one_unit(self) -> "Window":
        if (self.days is None) == (self.hours is None):
            raise ValueError("a window has exactly one of: days, hours")
        return self

    @property
    def hours_total(self) -> int:
        return self.hours if self.hours is not None else self.days * 24


class EventCount(_Model):
    op: Literal["gte", "gt", "eq", "lte", "lt"] = "gte"
    value: int = Field(default=1, ge=0)


class EventCondition(_Model):
    type: str
    where: list[FieldCondition] = Field(default_factory=list)
    within: Window
    count: EventCount = EventCount()


class BuyingGroupCondition(_Model):
    """The people of the buying groups of a solution interest, optionally only complete (or incomplete)
    groups, groups missing a role (fewer members in it than its required count), or holders of a role."""

    solution_interest: str
    complete: bool | None = None
    missing_role: str | None = None
    role: str | None = None


class Condition(_Model):
    all_: list["Condition"] | None = Field(default=None, alias="all", min_length=1)
    any_: list["Condition"] | None = Field(default=None, alias="any", min_length=1)
    not_: "Condition | None" = Field(default=None, alias="not")
    attribute: AttributeCondition | None = None
    account: AccountCondition | None = None
    event: EventCondition | None = None
    in_segment: str | None = None
    buying_group: BuyingGroupCondition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Condition":
        present = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(present) != 1:
            keys = "all, any, not, attribute, account, event, in_segment, buying_group"
            raise ValueError(f"a condition has exactly one of: {keys} (found {len(present)})")
        if self.attribute is not None:
            _known(self.attribute.name, PERSON_ATTRIBUTES, "person attribute")
        return self

    def walk(self):
        """This condition and every condition nested in it."""
        yield self
        for child in (self.all_ or []) + (self.any_ or []) + ([self.not_] if self.not_ else []):
            yield from child.walk()


class AccountSegmentCondition(_Model):
    """A condition on one account, for account audiences (segments whose members are accounts):
    an account attribute, an aggregate over its deals, current membership of another account
    audience, or `person`: at least one of its people (any relation to the account, profiles
    excluded by the guardrails left out) meets a person condition."""

    all_: list["AccountSegmentCondition"] | None = Field(default=None, alias="all", min_length=1)
    any_: list["AccountSegmentCondition"] | None = Field(default=None, alias="any", min_length=1)
    not_: "AccountSegmentCondition | None" = Field(default=None, alias="not")
    attribute: AttributeCondition | None = None
    opportunities: OpportunityAggregate | None = None
    in_segment: str | None = None
    person: Condition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "AccountSegmentCondition":
        present = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(present) != 1:
            keys = "all, any, not, attribute, opportunities, in_segment, person"
            raise ValueError(f"an account audience condition has exactly one of: {keys} (found {len(present)})")
        if self.attribute is not None:
            _known(self.attribute.name, ACCOUNT_ATTRIBUTES, "account attribute")
        return self

    def walk(self):
        """This condition and every account condition nested in it (not into `person`)."""
        yield self
        for child in (self.all_ or []) + (self.any_ or []) + ([self.not_] if self.not_ else []):
            yield from child.walk()


class _SegmentFields(_Model):
    id: str = Field(pattern=NAME)
    name: str
    description: str = ""
    platform_instance: str
    sandbox: str
    mode: Literal["batch", "streaming"] = "batch"


class Segment(_SegmentFields):
    """A person audience: its members are persons."""

    audience: Literal["person"] = "person"
    where: Condition

    def person_conditions(self):
        """Every person condition of the segment."""
        return self.where.walk()

    def in_segments(self) -> set[str]:
        """The segments this one reads (in_segment)."""
        return {c.in_segment for c in self.where.walk() if c.in_segment}


class AccountSegment(_SegmentFields):
    """An account audience (`audience: account`): its members are accounts. Batch only (declaring
    one streaming is refused with the reason)."""

    audience: Literal["account"]
    where: AccountSegmentCondition

    def person_conditions(self):
        """Every person condition nested in the audience's `person` conditions."""
        for cond in self.where.walk():
            if cond.person is not None:
                yield from cond.person.walk()

    def in_segments(self) -> set[str]:
        return ({c.in_segment for c in self.where.walk() if c.in_segment}
                | {c.in_segment for c in self.person_conditions() if c.in_segment})


def _audience_of(value: Any) -> str:
    return (value.get("audience", "person") if isinstance(value, dict)
            else getattr(value, "audience", "person"))


# A segment entry is a person audience unless it says `audience: account`.
AnySegment = Annotated[Union[Annotated[Segment, Tag("person")], Annotated[AccountSegment, Tag("account")]],
                       Discriminator(_audience_of)]


# --------------------------------------------------------------------------- buying groups


ROLE_WEIGHTS: dict[str, int] = {"Trivial": 20, "Minor": 40, "Normal": 60, "Important": 80, "Vital": 100}
# The six default role names (any other name is a custom role).
DEFAULT_ROLES = ("Decision Maker", "Influencer", "Practitioner", "Executive Steering Committee",
                 "Champion", "Other")
MAX_ROLES_PER_TEMPLATE = 20


class Role(_Model):
    """One role of a template. `where` is a person condition of the audience language (person
    attributes, in_segment, all/any/not); without it every person of the account matches."""

    name: str = Field(min_length=1, max_length=100)
    weight: str = "Normal"
    where: Condition | None = None
    required_for_completeness: bool = False
    required_count: int = Field(default=1, ge=1, le=100)

    @field_validator("weight")
    @classmethod
    def _known_weight(cls, weight: str) -> str:
        if weight not in ROLE_WEIGHTS:
            names = ", ".join(f"{name} ({value})" for name, value in ROLE_WEIGHTS.items())
            raise ValueError(f"unknown weight {weight!r}; use one of {names}")
        return weight

    @property
    def weight_value(self) -> int:
        return ROLE_WEIGHTS[self.weight]


class RoleTemplate(_Model):
    """Roles in priority order: a person matching several roles takes the first one listed."""

    id: str = Field(pattern=NAME)
    name: str = ""
    roles: list[Role] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _roles(cls, roles: list[Role]) -> list[Role]:
        if len(roles) > MAX_ROLES_PER_TEMPLATE:
            raise ValueError(f"{len(roles)} roles; a template has at most {MAX_ROLES_PER_TEMPLATE}")
        seen: dict[str, int] = {}
        for i, role in enumerate(roles):
            if role.name in seen:
                raise ValueError(f"roles[{seen[role.name]}] and roles[{i}] are both named {role.name!r}")
            seen[role.name] = i
        if not any(role.required_for_completeness for role in roles):
            raise ValueError("no role is required_for_completeness; the completeness score averages "
                             "over those roles, so flag at least one")
        return roles

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)


class AccountAudience(_Model):
    """The accounts a solution interest forms groups in: an account audience segment (`segment`:
    its id), or, inline, every account, a list of account ids (an account id, an MDM id or any
    source key of the account), or an account condition (an account attribute or an aggregate over
    the account's opportunities)."""

    segment: str | None = None
    all_: Literal[True] | None = Field(default=None, alias="all")
    ids: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)
    where: AccountCondition | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "AccountAudience":
        if sum(x is not None for x in (self.segment, self.all_, self.ids, self.where)) != 1:
            raise ValueError("an account audience has exactly one of: segment, all: true, ids, where")
        return self


class SolutionInterest(_Model):
    id: str = Field(pattern=NAME)
    name: str = ""
    platform_instance: str
    sandbox: str
    template: str
    accounts: AccountAudience


class Engagement(_Model):
    """Engagement points: each activity type counted at most 20 times per member per day over the
    30 days before evaluation, times the event type's weight, times the member's role weight / 100.
    The score is 100 * sqrt(min(points, full_score_points) / full_score_points)."""

    event_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    default_weight: float = Field(default=1.0, ge=0)
    full_score_points: float = Field(default=100.0, gt=0)


class BuyingGroups(_Model):
    templates: list[RoleTemplate] = Field(default_factory=list)
    solution_interests: list[SolutionInterest] = Field(default_factory=list)
    engagement: Engagement = Field(default_factory=Engagement)

    def template(self, template_id: str) -> RoleTemplate:
        return next(t for t in self.templates if t.id == template_id)

    def solution_interest(self, solution_interest_id: str) -> SolutionInterest:
        return next(s for s in self.solution_interests if s.id == solution_interest_id)


# --------------------------------------------------------------------------- destinations


class AttributeMapping(_Model):
    source: str
    target: str

    @field_validator("source")
    @classmethod
    def _known_attribute(cls, name: str) -> str:
        return _known(name, PERSON_ATTRIBUTES, "profile attribute")


class StaticListAudience(_Model):
    segment: str
    static_list_id: int = Field(gt=0)


MAX_LEAD_ATTRIBUTES = 50                                  # mapped attributes a new lead may carry
LEAD_REQUIRED_FIELDS = ("firstName", "lastName", "email")  # Marketo fields every new lead needs


class LeadCreation(_Model):
    """Members with no Marketo lead (by email or ECID) become leads, from the mapped attributes.
    Never for unsubscribed people. lookupField is always email, 300 leads per call."""

    action: Literal["createOnly", "createOrUpdate"]


class MarketoDestination(_Model):
    id: str = Field(pattern=NAME)
    type: Literal["marketo"]
    munchkin_id: str = Field(pattern=r"^\d{3}-[A-Z]{3}-\d{3}$")
    conn_id: str
    platform_instance: str
    sandbox: str
    audiences: list[StaticListAudience] = Field(min_length=1)
    mapping: list[AttributeMapping] = Field(default_factory=list)
    # How members find their lead: by email, then by an ECID the lead carries (its `ecids` field).
    match_on: list[Literal["email", "ecid"]] = Field(default_factory=lambda: ["email", "ecid"], min_length=1)
    lead_creation: LeadCreation | None = None       # off unless configured
    # Keep the mapped attributes of each member's lead equal to the profile (updateOnly by lead id).
    update_attributes: bool = False
    # A member found with no lead is looked up by email again once its email or consent changes, or
    # after this many hours (a lead may be made in Marketo meanwhile); 0 looks up on every run.
    lookup_retry_hours: int = Field(default=24, ge=0)

    @model_validator(mode="after")
    def _mapping_fits_a_lead(self) -> "MarketoDestination":
        uses = [key for key, on in (("lead_creation", self.lead_creation is not None),
                                    ("update_attributes", self.update_attributes)) if on]
        if not uses:
            return self
        use = uses[0]
        if not self.mapping:
            raise ValueError(f"{use}: mapping is empty; map the profile attributes the leads should carry")
        if len(self.mapping) > MAX_LEAD_ATTRIBUTES:
            raise ValueError(f"{use}: mapping has {len(self.mapping)} attributes; a Marketo lead takes "
                             f"at most {MAX_LEAD_ATTRIBUTES}: remove mappings or drop {use}")
        for i, entry in enumerate(self.mapping):
            kind = PERSON_ATTRIBUTES[entry.source]
            if kind in ("array", "map"):
                raise ValueError(f"{use}: mapping[{i}] ({entry.source} -> {entry.target}) is {kind} typed; "
                                 "a Marketo lead takes scalar attributes only: map a scalar attribute instead")
        targets = [m.target for m in self.mapping]
        if duplicated := sorted({t for t in targets if targets.count(t) > 1}):
            raise ValueError(f"{use}: mapping sets {', '.join(duplicated)} more than once")
        if self.lead_creation is not None and (missing := [f for f in LEAD_REQUIRED_FIELDS if f not in targets]):
            raise ValueError(f"lead_creation: Marketo needs {', '.join(LEAD_REQUIRED_FIELDS)} to create a lead; "
                             f"mapping has no target {', '.join(missing)} (e.g. add "
                             "{source: first_name, target: firstName} to mapping)")
        return self


class SegmentAudience(_Model):
    segment: str


class InterestAccountAudience(_Model):
    """Accounts to send: an account audience segment (`segment`, its current members) or a solution
    interest's account audience (`solution_interest`, the accounts its buying groups are formed in)."""

    segment: str | None = None
    solution_interest: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "InterestAccountAudience":
        if (self.segment is None) == (self.solution_interest is None):
            raise ValueError("an account audience names exactly one of: segment, solution_interest")
        return self

    @property
    def key(self) -> str:
        """activation_state.audience_key (and the export folder): the segment, or accounts__<interest>."""
        return self.segment or f"accounts__{self.solution_interest}"


class CloudStorageDestination(_Model):
    """Audiences written as files under `path` (any fsspec URL ObjectStoragePath reads: file://,
    s3://, gs://, ...; `conn_id` names the Airflow connection holding the store's credentials)."""

    id: str = Field(pattern=NAME)
    type: Literal["cloud_storage"]
    path: str = Field(min_length=1)
    conn_id: str | None = None
    platform_instance: str
    sandbox: str
    audiences: list[SegmentAudience] = Field(default_factory=list)
    account_audiences: list[InterestAccountAudience] = Field(default_factory=list)
    export: Literal["full", "incremental"] = "full"
    formats: list[Literal["csv", "parquet"]] = Field(default_factory=lambda: ["csv"], min_length=1)
    split_rows: int = Field(default=5_000_000, ge=1)
    mapping: list[AttributeMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_export(self) -> "CloudStorageDestination":
        if not self.audiences and not self.account_audiences:
            raise ValueError("a cloud storage destination needs audiences or account_audiences")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats: each format at most once, got {self.formats}")
        return self


class LinkedInAudience(_Model):
    segment: str
    name: str = ""                  # the DMP segment's name (default: the segment id)


class LinkedInAccountAudience(InterestAccountAudience):
    """An account audience, sent as a COMPANY DMP segment."""

    name: str = ""                  # the DMP segment's name (default: the segment, or "<solution interest> accounts")


class LinkedInDestination(_Model):
    """LinkedIn Matched Audiences in an ad account: a USER DMP segment per person audience, a COMPANY
    DMP segment per account audience. The Airflow connection holds the API base URL (host) and the
    OAuth access token (password)."""

    id: str = Field(pattern=NAME)
    type: Literal["linkedin"]
    conn_id: str
    ad_account_id: int = Field(gt=0)
    platform_instance: str
    sandbox: str
    audiences: list[LinkedInAudience] = Field(default_factory=list)
    account_audiences: list[LinkedInAccountAudience] = Field(default_factory=list)
    mapping: list[AttributeMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_send(self) -> "LinkedInDestination":
        if not self.audiences and not self.account_audiences:
            raise ValueError("a LinkedIn destination needs audiences or account_audiences")
        return self


Destination = Annotated[Union[MarketoDestination, CloudStorageDestination, LinkedInDestination],
                        Field(discriminator="type")]
AnyDestination = MarketoDestination | CloudStorageDestination | LinkedInDestination


# --------------------------------------------------------------------------- the whole file


class Sandbox(_Model):
    platform_instance: str
    name: str

    @property
    def schema(self) -> str:
        """The warehouse schema that isolates this sandbox: no query crosses sandboxes."""
        return f"cdp_{self.platform_instance}_{self.name}"


# --------------------------------------------------------------------------- identity


NAMESPACES = ("email", "ecid", "marketo", "crm_contact", "crm_lead")


class IdentityRules(_Model):
    """How records are linked into persons. Every link a rule refuses is kept with its reason in
    identity_rejected_link."""
    blocked_values: list[str] = Field(default_factory=lambda: ["", "null", "none", "anonymous", "invalid",
                                                               "unknown", "n/a"])
    # Case-insensitive regular expressions on the value (after trimming and lower-casing emails).
    blocked_patterns: list[str] = Field(default_factory=lambda: [r"^test@", r"@test\.", r"^noemail@",
                                                                 r"^no-?reply@"])
    # Role mailboxes (local part) stay on their record but never join two people.
    shared_mailboxes: list[str] = Field(default_factory=lambda: [
        "info", "sales", "support", "admin", "marketing", "contact", "hello", "office", "team",
        "billing", "accounts", "hr", "jobs", "careers", "help", "webmaster", "enquiries", "inquiries"])
    # A person holds at most one value of these per instance (one lead per Marketo instance, one
    # contact per CRM org).
    unique_namespaces: list[str] = Field(default_factory=lambda: ["marketo", "crm_contact"])
    max_identities_per_graph: int = Field(50, ge=2, le=1000)
    max_identities_per_record: int = Field(20, ge=1, le=1000)
    # Attribute merge: the first system listed wins, then the most recently updated record.
    source_priority: list[str] = Field(default_factory=lambda: ["Salesforce", "Marketo"])
    # Accounts with no MDM cross-reference may be joined on their normalised website domain.
    account_domain_fallback: bool = False
    max_events_per_profile: int = Field(5000, ge=1)

    @model_validator(mode="after")
    def _known(self) -> "IdentityRules":
        import re

        for i, name in enumerate(self.unique_namespaces):
            if name not in NAMESPACES:
                raise ValueError(f"identity.unique_namespaces[{i}]: unknown namespace {name!r} "
                                 f"(one of {', '.join(NAMESPACES)})")
        for i, pattern in enumerate(self.blocked_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"identity.blocked_patterns[{i}]: not a regular expression ({exc})") from None
        return self


class CdpConfig(_Model):
    platform_instances: list[PlatformInstance] = Field(min_length=1)
    identity: IdentityRules = Field(default_factory=IdentityRules)
    sources: list[Source] = Field(default_factory=list)
    segments: list[AnySegment] = Field(default_factory=list)
    destinations: list[Destination] = Field(default_factory=list)
    buying_groups: BuyingGroups = Field(default_factory=BuyingGroups)

    @model_validator(mode="after")
    def _references(self) -> "CdpConfig":
        sandboxes = {(p.id, s) for p in self.platform_instances for s in p.sandboxes}
        for kind, items in (("sources", self.sources), ("segments", self.segments),
                            ("destinations", self.destinations)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.id in seen:
                    raise ValueError(f"{kind}[{i}].id: duplicate id {item.id!r}")
                seen.add(item.id)
        for i, source in enumerate(self.sources):
            for j, feed in enumerate(source.feeds):
                if (feed.platform_instance, feed.sandbox) not in sandboxes:
                    raise ValueError(
                        f"sources[{i}].feeds[{j}]: sandbox {feed.platform_instance}/{feed.sandbox} "
                        "is not declared under platform_instances"
                    )
        segments = {s.id: s for s in self.segments}
        for i, seg in enumerate(self.segments):
            if (seg.platform_instance, seg.sandbox) not in sandboxes:
                raise ValueError(
                    f"segments[{i}] ({seg.id}): sandbox {seg.platform_instance}/{seg.sandbox} "
                    "is not declared under platform_instances"
                )
        list_owners: dict[tuple[str, int], str] = {}
        for i, dest in enumerate(self.destinations):
            for j, aud in enumerate(dest.audiences):
                if dest.type == "marketo":
                    # Each activation removes from its list whoever is not in its segment: two
                    # audiences on one list would remove each other's members on every run.
                    where = f"destinations[{i}].audiences[{j}]"
                    owner = list_owners.setdefault((dest.munchkin_id, aud.static_list_id), where)
                    if owner != where:
                        raise ValueError(f"{where}.static_list_id: static list {aud.static_list_id} of Marketo "
                                         f"{dest.munchkin_id} is already {owner}'s; one list takes one segment")
                seg = segments.get(aud.segment)
                if seg is None:
                    raise ValueError(f"destinations[{i}].audiences[{j}].segment: unknown segment {aud.segment!r}")
                if seg.audience != "person":
                    raise ValueError(f"destinations[{i}].audiences[{j}].segment: {aud.segment!r} is an account "
                                     "audience (its members are accounts); audiences take person segments")
                if (seg.platform_instance, seg.sandbox) != (dest.platform_instance, dest.sandbox):
                    raise ValueError(
                        f"destinations[{i}].audiences[{j}]: segment {aud.segment!r} lives in "
                        f"{seg.platform_instance}/{seg.sandbox}, the destination in "
                        f"{dest.platform_instance}/{dest.sandbox}"
                    )
            for j, aud in enumerate(getattr(dest, "account_audiences", [])):
                if aud.segment is not None:
                    seg = segments.get(aud.segment)
                    if seg is None or seg.audience != "account":
                        raise ValueError(f"destinations[{i}].account_audiences[{j}].segment: {aud.segment!r} is "
                                         "not an account audience (a segment with audience: account)")
                    if (seg.platform_instance, seg.sandbox) != (dest.platform_instance, dest.sandbox):
                        raise ValueError(
                            f"destinations[{i}].account_audiences[{j}]: segment {aud.segment!r} lives in "
                            f"{seg.platform_instance}/{seg.sandbox}, the destination in "
                            f"{dest.platform_instance}/{dest.sandbox}")
                    continue
                interest = next((si for si in self.buying_groups.solution_interests
                                 if si.id == aud.solution_interest), None)
                if interest is None:
                    raise ValueError(f"destinations[{i}].account_audiences[{j}].solution_interest: unknown "
                                     f"solution interest {aud.solution_interest!r}")
                if (interest.platform_instance, interest.sandbox) != (dest.platform_instance, dest.sandbox):
                    raise ValueError(
                        f"destinations[{i}].account_audiences[{j}]: solution interest "
                        f"{aud.solution_interest!r} lives in {interest.platform_instance}/{interest.sandbox}, "
                        f"the destination in {dest.platform_instance}/{dest.sandbox}"
                    )
        return self

    # Convenience views used by DAG factories and tasks.
    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(platform_instance=p.id, name=s) for p in self.platform_instances for s in p.sandboxes]

    def source(self, source_id: str) -> MarketoSource | SalesforceSource | MdmSource:
        return next(s for s in self.sources if s.id == source_id)

    def segment(self, segment_id: str) -> Segment | AccountSegment:
        return next(s for s in self.segments if s.id == segment_id)

    def destination(self, destination_id: str) -> AnyDestination:
        return next(d for d in self.destinations if d.id == destination_id)

    def sandbox_of(self, item: Segment | AccountSegment | AnyDestination | SolutionInterest) -> Sandbox:
        return Sandbox(platform_instance=item.platform_instance, name=item.sandbox)

    def segments_reading_buying_groups(self) -> set[str]:
        """The segments that read buying groups, directly or through in_segment: the daily run
        evaluates them after the buying groups, the other segments before (role conditions may
        read those)."""
        readers = {s.id for s in self.segments if any(c.buying_group for c in s.person_conditions())}
        while grown := {s.id for s in self.segments if s.id not in readers and s.in_segments() & readers}:
            readers |= grown
        return readers

    def sandboxes_fed_by(self, source_id: str) -> list[Sandbox]:
        return [Sandbox(platform_instance=f.platform_instance, name=f.sandbox)
                for f in self.source(source_id).feeds]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(node: Any) -> Any:
    """Replace ${VAR} / ${VAR:-default} in string values (not in comments or keys)."""
    if isinstance(node, dict):
        return {key: _expand_env(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_env(value) for value in node]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name, default)
        if value is None:
            raise ConfigError(f"environment variable {name} is referenced by the configuration but not set")
        return value

    return _ENV.sub(replace, node)


def _location(loc: tuple, data: Any) -> str:
    """('segments', 0, 'where', 'all', 1) -> 'segments[0] (high_value...).where.all[1]'."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            out += f"[{part}]"
            if isinstance(node, dict) and "id" in node and out.count("[") == 1:
                out += f" ({node['id']})"
            continue
        if isinstance(node, dict) and part not in node and part in (node.get("type"), _audience_of(node)):
            continue  # the tag of a discriminated union (e.g. 'marketo', 'account'), not a YAML key
        out += f".{part}" if out else part
        node = node.get(part) if isinstance(node, dict) else None
    return out


def parse_config(data: Any, origin: str = "<config>") -> CdpConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the configuration must be a mapping")
    from b2b_cdp.buying_groups import check_buying_groups  # both build on these models
    from b2b_cdp.segments import check_segments

    try:
        cfg = CdpConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = _location(tuple(err["loc"]), data) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (check the spelling)"
            if err["type"] == "union_tag_invalid" and "_audience_of" in err["msg"]:
                where, message = f"{where}.audience", (f"unknown audience {err['ctx']['tag']!r}; use person "
                                                       "(members are persons, the default) or account")
            lines.append(f"  {where}: {message}")
        raise ConfigError(f"{origin} is not a valid configuration:\n" + "\n".join(lines)) from None
    try:
        check_segments(cfg)
        check_buying_groups(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{origin} is not a valid configuration:\n  {exc}") from None
    return cfg


def config_path() -> Path:
    return Path(os.environ.get("CDP_CONFIG", DEFAULT_CONFIG_PATH))


@lru_cache(maxsize=8)
def _load(path: str, mtime: float, env_key: str) -> CdpConfig:
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = _expand_env(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, origin=path)


def load_config(path: str | Path | None = None) -> CdpConfig:
    """Load and validate the configuration (cached per file version and environment)."""
    path = Path(path) if path else config_path()
    if not path.exists():
        raise ConfigError(f"configuration file not found: {path} (set CDP_CONFIG to point at yours)")
    env_key = "|".join(f"{m.group(1)}={os.environ.get(m.group(1), '')}"
                       for m in _ENV.finditer(path.read_text(encoding="utf-8")))
    return _load(str(path), path.stat().st_mtime, env_key)
