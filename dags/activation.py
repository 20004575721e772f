"""Activation DAGs, one per destination, triggered by the segments they carry."""

from airflow.sdk import AssetAny, dag, task

from b2b_cdp.config import load_config
from b2b_cdp.orchestration import DEFAULT_ARGS, check_guardrails, marketo_pool, segment_asset


def activation(destination):
    @dag(dag_id=f"activate__{destination.id}",
         schedule=AssetAny(*(segment_asset(a.segment) for a in destination.audiences)),
         catchup=False, default_args=DEFAULT_ARGS, tags=["cdp", "activation", destination.type],
         doc_md=f"""
### Activate to `{destination.id}` (Marketo {destination.munchkin_id})

Adds the members of each segment to its static list and removes those who left, matching Marketo
leads by email. Only the difference from what the list already holds is sent; a run with no
change makes no API call. Lists: {", ".join(f"{a.segment} -> {a.static_list_id}" for a in destination.audiences)}.
""")
    def activate():
        @task(pool=marketo_pool(destination.munchkin_id))   # shares the instance's limits with ingestion
        def sync_static_lists(**context) -> dict:
            from b2b_cdp.activation import activate_destination
            return activate_destination(destination.id, context["run_id"])

        check_guardrails() >> sync_static_lists()

    return activate()


for _destination in load_config().destinations:
    activation(_destination)
