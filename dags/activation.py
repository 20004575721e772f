"""Activation DAGs, one per destination, triggered by the segments they carry."""

from airflow.sdk import AssetAny, Param, dag, task

from b2b_cdp.config import load_config
from b2b_cdp.orchestration import DEFAULT_ARGS, check_guardrails, marketo_pool, segment_asset


DRY_RUN_DOC = "\nTrigger with `dry_run` checked to print and store the plan (`activation_plan`) without calling anyone.\n"


def _doc(destination) -> str:
    lists = ", ".join(a.segment for a in destination.audiences) or "none"
    accounts = ", ".join(a.segment or f"solution interest {a.solution_interest}"
                         for a in getattr(destination, "account_audiences", [])) or "none"
    if destination.type == "marketo":
        creation = (f"Members with no lead are created ({destination.lead_creation.action}; never unsubscribed "
                    "people)." if destination.lead_creation else "No lead is created.")
        return f"""
### Activate to `{destination.id}` (Marketo {destination.munchkin_id})

Adds the members of each segment to its static list and removes those who left, matching Marketo
leads by {" then by ".join(destination.match_on)}. {creation} Only the difference from what the list
already holds is sent; a run with no change makes no API call. Lists: {", ".join(f"{a.segment} -> {a.static_list_id}" for a in destination.audiences)}.
"""
    if destination.type == "cloud_storage":
        return f"""
### Activate to `{destination.id}` (files under {destination.path})

Writes each audience as {" and ".join(f.upper() for f in destination.formats)} files ({destination.export} export, split at {destination.split_rows:,}
rows) with a manifest published last, so a reader never sees a partial export. Person audiences:
{lists}; account audiences: {accounts}.
"""
    return f"""
### Activate to `{destination.id}` (LinkedIn Matched Audiences, ad account {destination.ad_account_id})

Keeps one DMP segment per audience in step with its segment: members are sent as SHA-256 hashes of
their e-mail, only the difference from what the DMP segment holds; a run with no change makes no
API call. USER segments: {lists}; COMPANY segments: {accounts}.
"""


def activation(destination):
    assets = [segment_asset(a.segment) for a in destination.audiences]
    assets += [segment_asset(a.segment) for a in getattr(destination, "account_audiences", []) if a.segment]
    @dag(dag_id=f"activate__{destination.id}",
         # Solution interests' account audiences alone follow the daily batch that forms the buying groups.
         schedule=AssetAny(*assets) if assets else "@daily",
         # One run at a time: each diffs against the state the previous run left.
         catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS, tags=["cdp", "activation", destination.type],
         params={"dry_run": Param(False, type="boolean",
                                  description="Print and store the plan (activation_plan) without calling anyone")},
         doc_md=_doc(destination) + DRY_RUN_DOC)
    def activate():
        # Marketo calls share the instance's limits with ingestion.
        pool = {"pool": marketo_pool(destination.munchkin_id)} if destination.type == "marketo" else {}

        @task(task_id="sync_static_lists" if destination.type == "marketo" else "sync_audiences", **pool)
        def sync(**context) -> dict:
            from b2b_cdp.activation import activate_destination
            return activate_destination(destination.id, context["run_id"], bool(context["params"]["dry_run"]))

        check_guardrails() >> sync()

    return activate()


for _destination in load_config().destinations:
    activation(_destination)
