"""Every destination type gets its `activate__<destination>` DAG, triggered by its segments."""

import pytest
import yaml

from b2b_cdp.config import DEFAULT_CONFIG_PATH

TOWNSEND = {"id": "townsend_people", "name": "Townsend people", "platform_instance": "bodea", "sandbox": "prod",
            "mode": "batch", "where": {"attribute": {"name": "email", "op": "ends_with", "value": "@townsend.com"}}}


@pytest.fixture
def bag(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(TOWNSEND)
    where = {"platform_instance": "bodea", "sandbox": "prod"}
    raw["destinations"] += [
        {"id": "files", "type": "cloud_storage", "path": "${CDP_DROPZONE}/audiences", "export": "incremental",
         "audiences": [{"segment": "townsend_people"}],
         "account_audiences": [{"solution_interest": "new_product"}], **where},
        {"id": "accounts_only", "type": "cloud_storage", "path": str(tmp_path / "accounts"),
         "account_audiences": [{"solution_interest": "new_product"}], **where},
        {"id": "linkedin_ads", "type": "linkedin", "conn_id": "linkedin_ads", "ad_account_id": 508123456,
         "audiences": [{"segment": "townsend_people"}, {"segment": "high_value_new_product_visitors"}], **where},
        {"id": "linkedin_accounts", "type": "linkedin", "conn_id": "linkedin_ads", "ad_account_id": 508123456,
         "account_audiences": [{"solution_interest": "new_product"}], **where},
        {"id": "parquet_files", "type": "cloud_storage", "path": "s3://exports/audiences", "conn_id": "aws_exports",
         "formats": ["csv", "parquet"], "audiences": [{"segment": "townsend_people"}], **where},
        {"id": "marketo_creating", "type": "marketo", "munchkin_id": "111-AAA-111", "conn_id": "marketo_111_aaa_111",
         "audiences": [{"segment": "townsend_people", "static_list_id": 9002}],
         "mapping": [{"source": "email", "target": "email"}, {"source": "first_name", "target": "firstName"},
                     {"source": "last_name", "target": "lastName"}],
         "lead_creation": {"action": "createOnly"}, **where},
    ]
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    bag = DagBag(dag_folder="dags")
    assert bag.import_errors == {}
    return bag


def test_each_destination_type_gets_its_dag(bag):
    files, accounts, ads = (bag.dags[f"activate__{d}"] for d in ("files", "accounts_only", "linkedin_ads"))
    assert "cdp.audience.townsend_people" in str(files.timetable.asset_condition)
    linked = str(ads.timetable.asset_condition)
    assert "cdp.audience.townsend_people" in linked and "cdp.audience.high_value_new_product_visitors" in linked
    assert accounts.timetable.expression == "0 0 * * *"    # account audiences only: daily, after the batch
    for dag, kind in ((files, "cloud_storage"), (accounts, "cloud_storage"), (ads, "linkedin")):
        assert kind in dag.tags and dag.default_args["retries"] >= 2 and len(dag.doc_md) > 40
        sync = dag.get_task("sync_audiences")
        assert sync.pool == "default_pool"                # no Marketo instance's share
        assert "check_guardrails" in sync.get_flat_relative_ids(upstream=True)
    assert "activate__marketo_111_aaa_111" in bag.dag_ids
    # Company audiences alone follow the daily batch too; files may go to s3:// in two formats.
    assert bag.dags["activate__linkedin_accounts"].timetable.expression == "0 0 * * *"
    assert "cdp.audience.townsend_people" in str(bag.dags["activate__parquet_files"].timetable.asset_condition)
    # Lead creation shares the Marketo instance's pool with ingestion.
    assert bag.dags["activate__marketo_creating"].get_task("sync_static_lists").pool == "marketo_111_aaa_111"
    # One run at a time per destination: each diffs against the state the previous run left.
    assert all(bag.dags[d].max_active_runs == 1 for d in bag.dag_ids if d.startswith("activate__"))


def test_destination_references_are_checked(tmp_path):
    from b2b_cdp.config import ConfigError, parse_config

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["destinations"].append({"id": "files", "type": "cloud_storage", "path": "/tmp/x", "platform_instance": "bodea",
                                "sandbox": "prod", "account_audiences": [{"solution_interest": "nope"}]})
    with pytest.raises(ConfigError, match="unknown solution interest 'nope'"):
        parse_config(raw)
    raw["destinations"][-1]["account_audiences"] = []
    with pytest.raises(ConfigError, match="needs audiences or account_audiences"):
        parse_config(raw)
