"""Cloud storage activation on Bodea: CSV exports through ObjectStoragePath into a tmp folder.

The test configuration adds to the shipped one a segment `townsend_people` (p1, p2, p3: three
members, split 2 + 1 at split_rows 2) and two file destinations, full and incremental, carrying it,
the shipped high_value_new_product_visitors (p2 until the 30-day window drops their visit) and the
account audience of the solution interest new_product (Acme, Globex, Townsend).
"""

import csv
import hashlib
import io
import json

import pyarrow.parquet as pq
import pytest
import yaml

from b2b_cdp import activation, cloud_storage, warehouse
from b2b_cdp.config import DEFAULT_CONFIG_PATH, load_config
from tests.integration.test_buying_groups import LATER, evaluate
from tests.integration.test_explain import stitched  # noqa: F401  (the fixture)
from tests.integration.test_pipeline_stages import CLOCK, one

TOWNSEND = {"id": "townsend_people", "name": "Townsend people", "platform_instance": "bodea", "sandbox": "prod",
            "mode": "batch", "where": {"attribute": {"name": "email", "op": "ends_with", "value": "@townsend.com"}}}


# An account audience segment: Townsend ($1.1M stitched across both CRMs) and Acme ($1.5M) qualify.
OVER_1M = {"id": "accounts_over_1m", "name": "Accounts over $1M won", "platform_instance": "bodea",
           "sandbox": "prod", "audience": "account",
           "where": {"opportunities": {"aggregate": "sum", "field": "amount", "won": True, "op": "gt",
                                       "value": 1_000_000}}}


def destination(dest_id: str, export: str, split_rows: int, **more) -> dict:
    return {"id": dest_id, "type": "cloud_storage", "path": "${CDP_TEST_EXPORTS}/audiences",
            "platform_instance": "bodea", "sandbox": "prod", "export": export, "split_rows": split_rows,
            "audiences": [{"segment": "townsend_people"}, {"segment": "high_value_new_product_visitors"}],
            "account_audiences": [{"solution_interest": "new_product"}], **more}


@pytest.fixture
def exports(tmp_path, monkeypatch):
    """The test configuration in force; returns the exports folder."""
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(TOWNSEND)
    raw["destinations"] += [destination("files_full", "full", 2), destination("files_incr", "incremental", 1000),
                            destination("files_both", "full", 2, formats=["csv", "parquet"]),
                            {"id": "files_accounts", "type": "cloud_storage", "path": "${CDP_TEST_EXPORTS}/audiences",
                             "platform_instance": "bodea", "sandbox": "prod",
                             "account_audiences": [{"segment": "accounts_over_1m"}]}]
    raw["segments"].append(OVER_1M)
    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(path))
    monkeypatch.setenv("CDP_TEST_EXPORTS", f"file://{tmp_path}/exports")
    return tmp_path / "exports" / "audiences"


@pytest.fixture
def sandbox(stitched, exports):
    evaluate(load_config(), stitched, CLOCK)
    return stitched


def read_export(folder, manifest: dict) -> list[dict]:
    directory = next(d for d in folder.iterdir() if d.name.startswith(manifest["evaluated_at"][:4]) and
                     (d / "manifest.json").exists() and json.loads((d / "manifest.json").read_text()) == manifest)
    rows = []
    for entry in manifest["files"]:
        data = (directory / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
        part = list(csv.DictReader(io.StringIO(data.decode())))
        assert len(part) == entry["rows"]
        rows += part
    return rows


def visible_files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def sync_log(sandbox, dest_id, key):
    return one(sandbox, "SELECT run_id, audience_size, planned_add, planned_remove, added, removed, files, "
                        "rows_written, note FROM activation_sync_log WHERE destination_id = %s "
                        "AND audience_key = %s ORDER BY started_at", (dest_id, key))


def test_a_dry_run_writes_no_file_and_stores_the_plan(sandbox, exports):
    outcome = activation.activate_destination("files_full", "dry-1", dry_run=True)
    assert outcome["townsend_people"] == {"dry_run": True, "audience_size": 3, "planned_add": 3,
                                          "planned_remove": 0, "api_calls": 0}
    assert not exports.exists() or visible_files(exports) == []
    assert one(sandbox, "SELECT count(*) FROM activation_plan WHERE audience_key = 'townsend_people'") == [(3,)]
    # The real run that follows still exports everyone: a dry run moves no state.
    assert activation.activate_destination("files_full", "run-1")["townsend_people"]["rows"] == 3


def test_full_export_split_files_and_manifest(sandbox, exports):
    outcome = activation.activate_destination("files_full", "run-1")
    assert {k: (v["audience_size"], v["files"], v["rows"]) for k, v in outcome.items()} == {
        "townsend_people": (3, 2, 3), "high_value_new_product_visitors": (1, 1, 1),
        "accounts__new_product": (3, 2, 3)}
    (manifest,) = cloud_storage.published_exports("files_full", "townsend_people")
    assert manifest["segment"] == "townsend_people" and manifest["kind"] == "person"
    assert manifest["evaluated_at"] == CLOCK.isoformat() and manifest["export"] == "full"
    assert manifest["columns"] == ["person_id", "email", "first_name", "last_name"]
    assert [(f["name"], f["rows"]) for f in manifest["files"]] == [("part-00000.csv", 2), ("part-00001.csv", 1)]
    folder = exports / "files_full" / "townsend_people"
    rows = read_export(folder, manifest)
    assert sorted(r["email"] for r in rows) == ["p1@townsend.com", "p2@townsend.com", "p3@townsend.com"]
    # Nothing but finished parts and the manifest is visible, no temporary name is left behind.
    (directory,) = [d.name for d in folder.iterdir()]
    assert directory == "20261120T120000Z__run-1"
    assert visible_files(folder) == [f"{directory}/manifest.json", f"{directory}/part-00000.csv",
                                     f"{directory}/part-00001.csv"]

    (accounts,) = cloud_storage.published_exports("files_full", "accounts__new_product")
    assert (accounts["kind"], accounts["solution_interest"], accounts["rows"]) == ("account", "new_product", 3)
    account_rows = read_export(exports / "files_full" / "accounts__new_product", accounts)
    assert sorted((r["mdm_id"], r["buying_group_complete"]) for r in account_rows) == [
        ("MDM-ACME", "False"), ("MDM-GLOBEX", "False"), ("MDM-TOWNSEND", "True")]

    # A daily full export writes the whole audience again, and each run has its sync-log row.
    activation.activate_destination("files_full", "run-2")
    assert [m["rows"] for m in cloud_storage.published_exports("files_full", "townsend_people")] == [3, 3]
    assert sync_log(sandbox, "files_full", "townsend_people") == [
        ("run-1", 3, 3, 0, 3, 0, 2, 3, None), ("run-2", 3, 0, 0, 0, 0, 2, 3, None)]


def test_incremental_export_writes_only_changes_and_nothing_without_one(sandbox, exports):
    first = activation.activate_destination("files_incr", "run-1")
    assert first["townsend_people"]["entered"] == 3
    (manifest,) = cloud_storage.published_exports("files_incr", "townsend_people")
    rows = read_export(exports / "files_incr" / "townsend_people", manifest)
    assert sorted((r["email"], r["change"]) for r in rows) == [
        ("p1@townsend.com", "entered"), ("p2@townsend.com", "entered"), ("p3@townsend.com", "entered")]

    before = visible_files(exports)
    again = activation.activate_destination("files_incr", "run-2")
    assert all(o["files"] == 0 and o["location"] is None for o in again.values())
    assert visible_files(exports) == before
    assert sync_log(sandbox, "files_incr", "townsend_people")[-1] == (
        "run-2", 3, 0, 0, 0, 0, 0, 0, cloud_storage.NO_CHANGE)

    # Forty days later p2 leaves high_value_new_product_visitors: one `exited` row, nothing else.
    evaluate(load_config(), sandbox, LATER, run_id="run-3")
    later = activation.activate_destination("files_incr", "run-3")
    assert (later["high_value_new_product_visitors"]["exited"], later["townsend_people"]["files"]) == (1, 0)
    exports_of_segment = cloud_storage.published_exports("files_incr", "high_value_new_product_visitors")
    assert [m["evaluated_at"] for m in exports_of_segment] == [CLOCK.isoformat(), LATER.isoformat()]
    rows = read_export(exports / "files_incr" / "high_value_new_product_visitors", exports_of_segment[-1])
    assert [(r["email"], r["change"], r["first_name"]) for r in rows] == [("p2@townsend.com", "exited", "")]


def die_before_the_manifest(destination_id: str, run_id: str) -> None:
    """Run a destination whose worker is lost between its files and its manifest."""
    def crash(directory, manifest):
        raise RuntimeError("worker lost between the files and the manifest")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cloud_storage, "_publish_manifest", crash)
        with pytest.raises(RuntimeError):
            activation.activate_destination(destination_id, run_id)


def test_a_crash_before_the_manifest_publishes_nothing_and_the_next_run_completes(sandbox, exports):
    die_before_the_manifest("files_incr", "run-1")
    folder = exports / "files_incr" / "townsend_people"
    assert cloud_storage.published_exports("files_incr", "townsend_people") == []
    assert [p.name for p in folder.rglob("*") if p.is_file()] == ["part-00000.csv"]   # no manifest
    held = one(sandbox, "SELECT count(*) FROM activation_state WHERE destination_id = 'files_incr'")[0][0]
    assert held == 0        # the state did not move: the next run exports the same changes

    outcome = activation.activate_destination("files_incr", "run-2")
    assert outcome["townsend_people"]["entered"] == 3
    (manifest,) = cloud_storage.published_exports("files_incr", "townsend_people")
    assert manifest["run_id"] == "run-2"
    # The unfinished directory of run-1 is gone; only run-2's complete export remains.
    assert [d.name for d in folder.iterdir()] == ["20261120T120000Z__run-2"]
    assert len(read_export(folder, manifest)) == 3


def test_a_file_never_appears_under_its_name_before_it_is_complete(tmp_path):
    from airflow.sdk import ObjectStoragePath

    directory = ObjectStoragePath(f"file://{tmp_path}")

    def rows():
        yield ("a", "a@x.com", None, None)
        assert visible_files(tmp_path) == [".part-00000.csv.tmp"]
        raise RuntimeError("crash mid-file")

    with pytest.raises(RuntimeError):
        cloud_storage._write_part(directory, "part-00000.csv", cloud_storage.PERSON_COLUMNS, rows())
    assert not (tmp_path / "part-00000.csv").exists()


def test_the_sync_log_records_the_location(sandbox, exports):
    activation.activate_destination("files_full", "run-1")
    with warehouse.connect(sandbox) as conn:
        (location,), = conn.execute("SELECT location FROM activation_sync_log WHERE destination_id = 'files_full' "
                                    "AND audience_key = 'townsend_people'").fetchall()
    assert location.endswith("/audiences/files_full/townsend_people/20261120T120000Z__run-1")


def test_csv_and_parquet_hold_the_same_rows_split_alike(sandbox, exports):
    outcome = activation.activate_destination("files_both", "run-1")
    assert (outcome["townsend_people"]["files"], outcome["townsend_people"]["rows"]) == (4, 3)
    (manifest,) = cloud_storage.published_exports("files_both", "townsend_people")
    assert manifest["formats"] == ["csv", "parquet"] and manifest["rows"] == 3
    assert [(f["name"], f["format"], f["rows"]) for f in manifest["files"]] == [
        ("part-00000.csv", "csv", 2), ("part-00000.parquet", "parquet", 2),
        ("part-00001.csv", "csv", 1), ("part-00001.parquet", "parquet", 1)]
    folder = exports / "files_both" / "townsend_people"
    (directory,) = folder.iterdir()
    from_parquet = []
    for entry in manifest["files"]:
        data = (directory / entry["name"]).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["bytes"])
        if entry["format"] == "parquet":
            table = pq.read_table(io.BytesIO(data))
            assert table.column_names == manifest["columns"] and table.num_rows == entry["rows"]
            from_parquet += table.to_pylist()
    from_csv = [row for f in manifest["files"] if f["format"] == "csv"
                for row in csv.DictReader(io.StringIO((directory / f["name"]).read_text()))]
    assert sorted(r["email"] for r in from_parquet) == sorted(r["email"] for r in from_csv) == [
        "p1@townsend.com", "p2@townsend.com", "p3@townsend.com"]
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]

    # Account audiences keep their types in Parquet: a boolean and a number.
    (accounts,) = cloud_storage.published_exports("files_both", "accounts__new_product")
    account_dir = next((exports / "files_both" / "accounts__new_product").iterdir())
    rows = [row for f in accounts["files"] if f["format"] == "parquet"
            for row in pq.read_table(account_dir / f["name"]).to_pylist()]
    townsend = next(r for r in rows if r["mdm_id"] == "MDM-TOWNSEND")
    assert townsend["buying_group_complete"] is True and townsend["buying_group_completeness"] == 100.0


def test_an_account_audience_segment_is_exported_as_accounts(sandbox, exports):
    outcome = activation.activate_destination("files_accounts", "run-1")
    assert {k: (v["audience_size"], v["files"], v["rows"]) for k, v in outcome.items()} == {
        "accounts_over_1m": (2, 1, 2)}
    (manifest,) = cloud_storage.published_exports("files_accounts", "accounts_over_1m")
    assert (manifest["kind"], manifest["segment"], manifest["solution_interest"]) == ("account", "accounts_over_1m", None)
    assert manifest["evaluated_at"] == CLOCK.isoformat()
    rows = read_export(exports / "files_accounts" / "accounts_over_1m", manifest)
    assert sorted((r["mdm_id"], r["buying_group_complete"]) for r in rows) == [("MDM-ACME", ""), ("MDM-TOWNSEND", "")]
