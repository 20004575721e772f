"""Cloud storage activation to s3:// through ObjectStoragePath, against a local S3-compatible server
(moto's), reached through an Airflow connection of type aws carrying the endpoint and dummy keys.

The configuration is the cloud storage test's (segment townsend_people: p1, p2, p3) with one
destination writing CSV and Parquet to a bucket, split at 2 rows.
"""

import csv
import hashlib
import io
import json
import os
import socket

import pyarrow.parquet as pq
import pytest
import yaml

from b2b_cdp import activation, cloud_storage
from b2b_cdp.config import DEFAULT_CONFIG_PATH, load_config
from tests.integration.test_activation_cloud_storage import TOWNSEND, destination, die_before_the_manifest
from tests.integration.test_buying_groups import evaluate
from tests.integration.test_explain import stitched  # noqa: F401  (the fixture)
from tests.integration.test_pipeline_stages import CLOCK

CONN_ID = "aws_exports_test"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A local S3-compatible server for the module, and the Airflow connection pointing at it
    (ObjectStoragePath keeps one filesystem per connection for the whole process)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({
        "conn_type": "aws", "login": KEYS["aws_access_key_id"], "password": KEYS["aws_secret_access_key"],
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}})
    yield endpoint
    del os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"]
    server.stop()


@pytest.fixture
def s3(s3_endpoint, request):
    """A fresh bucket (named after the test) and a boto3 client to look into it as a reader would."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **KEYS)
    bucket = "cdp-" + request.node.name.replace("_", "-")[:40].strip("-")
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def bucket_exports(stitched, s3, tmp_path, monkeypatch):  # noqa: F811
    client, bucket = s3
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(TOWNSEND)
    raw["destinations"].append(destination("files_s3", "full", 2, formats=["csv", "parquet"], conn_id=CONN_ID)
                               | {"path": f"s3://{bucket}/audiences"})
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    evaluate(load_config(), stitched, CLOCK)
    return client, bucket


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def body(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_exports_land_in_the_bucket_with_their_manifest_only_when_complete(bucket_exports):
    client, bucket = bucket_exports
    folder = "audiences/files_s3/townsend_people/"

    # A run that dies between its files and its manifest publishes nothing a reader would take.
    die_before_the_manifest("files_s3", "run-1")
    assert keys(client, bucket, folder) and not [k for k in keys(client, bucket) if k.endswith("manifest.json")]
    assert cloud_storage.published_exports("files_s3", "townsend_people") == []

    outcome = activation.activate_destination("files_s3", "run-2")
    assert (outcome["townsend_people"]["files"], outcome["townsend_people"]["rows"]) == (4, 3)
    prefix = folder + "20261120T120000Z__run-2/"
    assert outcome["townsend_people"]["location"] == f"s3://{bucket}/{prefix.rstrip('/')}"
    # The unpublished prefix of run-1 is gone; only finished objects under their final names remain.
    assert keys(client, bucket, folder) == [
        prefix + name for name in ("manifest.json", "part-00000.csv", "part-00000.parquet",
                                   "part-00001.csv", "part-00001.parquet")]
    assert not [k for k in keys(client, bucket) if k.endswith(".tmp")]

    manifest = json.loads(body(client, bucket, prefix + "manifest.json"))
    assert (manifest["destination"], manifest["segment"], manifest["rows"]) == ("files_s3", "townsend_people", 3)
    emails = {"csv": [], "parquet": []}
    for entry in manifest["files"]:
        data = body(client, bucket, prefix + entry["name"])
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["bytes"])
        if entry["format"] == "csv":
            emails["csv"] += [r["email"] for r in csv.DictReader(io.StringIO(data.decode()))]
        else:
            emails["parquet"] += pq.read_table(io.BytesIO(data)).column("email").to_pylist()
    assert sorted(emails["csv"]) == sorted(emails["parquet"]) == [
        "p1@townsend.com", "p2@townsend.com", "p3@townsend.com"]
    # The same manifests, read back through ObjectStoragePath as a reader of the store would.
    assert cloud_storage.published_exports("files_s3", "townsend_people") == [manifest]
    assert [m["rows"] for m in cloud_storage.published_exports("files_s3", "accounts__new_product")] == [3]


def test_no_object_appears_under_its_final_name_before_it_is_complete(s3):
    from airflow.sdk import ObjectStoragePath

    client, bucket = s3
    directory = ObjectStoragePath(f"s3://{bucket}/crash", conn_id=CONN_ID)
    seen_mid_file: list[str] = []

    def rows():
        yield ("a", "a@x.com", None, None)
        seen_mid_file.extend(keys(client, bucket))
        raise RuntimeError("worker lost mid-file")

    with pytest.raises(RuntimeError):
        cloud_storage._write_part(directory, "part-00000.csv", cloud_storage.PERSON_COLUMNS, rows())
    # While the file was being written nothing was visible (S3 shows an object only once its upload
    # is complete), and the final name never appeared.
    assert seen_mid_file == []
    assert "crash/part-00000.csv" not in keys(client, bucket)

    # A complete file appears under its final name, whole.
    entry = cloud_storage._write_part(directory, "part-00000.csv", ["a"], [("x",), ("y",)])
    assert keys(client, bucket, "crash/") == ["crash/part-00000.csv"]
    assert body(client, bucket, "crash/part-00000.csv") == b"a\nx\ny\n" and entry["bytes"] == 6
