"""The landing checkpoint quarantines refused rows with their reason and keeps the good ones."""

from datetime import datetime, timezone

from b2b_cdp import warehouse
from b2b_cdp.config import load_config
from b2b_cdp.ingest import land
from b2b_cdp.landing_checks import check_landed

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def lead(lead_id, email="ok@example.com", updated="2026-11-01T00:00:00Z", **extra):
    return {"id": lead_id, "email": email, "updatedAt": updated, **extra}


def test_bad_rows_are_quarantined_and_good_rows_stay(clean_sandboxes):
    sandbox = clean_sandboxes[0]
    cfg = load_config()
    records = [
        lead("1"),
        lead("2", email="not-an-email"),
        lead(None),
        lead("4"), lead("4"),
        lead("5", updated="2031-01-01T00:00:00Z"),
        lead("6", updated="yesterday"),
        lead("7", _parse_error="line 9: more cells than the file's 40 columns"),
    ]
    land(cfg, "marketo_111_aaa_111", "raw_marketo_leads", "leads", "b1", NOW, records)
    outcome = check_landed("marketo_111_aaa_111", "run-1", NOW)
    assert not outcome.success
    with warehouse.connect(sandbox) as conn:
        kept = conn.execute("SELECT id FROM raw_marketo_leads").fetchall()
        quarantined = dict(conn.execute("SELECT _record->>'id', reason FROM raw_quarantine "
                                        "WHERE _record->>'id' IS NOT NULL AND _record->>'id' <> '4'").fetchall())
        dupes = conn.execute("SELECT count(*), min(reason) FROM raw_quarantine WHERE _record->>'id' = '4'").fetchone()
        missing = conn.execute("SELECT reason FROM raw_quarantine WHERE _record->>'id' IS NULL").fetchone()
        stored = conn.execute("SELECT success FROM ops_checkpoint_result "
                              "WHERE checkpoint = 'landing__marketo_111_aaa_111'").fetchone()
        tally = conn.execute("SELECT rows_checked, rows_quarantined FROM ops_landing_check").fetchone()
        # A quarantined record holds the source's fields (and the parse error), not the lake's own columns.
        lake_keys = conn.execute("SELECT DISTINCT k FROM raw_quarantine, jsonb_object_keys(_record) k "
                                 "WHERE k LIKE '\\_%%' AND k <> '_parse_error'").fetchall()
    assert lake_keys == []
    assert kept == [("1",)]
    assert quarantined == {"2": "email not well-formed",
                           "5": "change timestamp more than 1 day, 0:00:00 in the future",
                           "6": "change timestamp missing or malformed",
                           "7": "malformed row in the source file"}
    assert dupes == (2, "record key repeated within its batch")   # both copies kept, in quarantine
    assert missing == ("record key missing",)
    assert stored == (False,)
    assert tally == (8, 7)
    # Nothing new landed: a second check has nothing to look at and passes.
    assert check_landed("marketo_111_aaa_111", "run-2", NOW).success


def test_every_sandbox_a_source_feeds_checks_its_own_copy(clean_sandboxes, tmp_path, monkeypatch):
    import yaml

    from b2b_cdp.config import DEFAULT_CONFIG_PATH, Sandbox

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["platform_instances"][0]["sandboxes"].append("dev")
    raw["sources"][0]["feeds"].append({"platform_instance": "bodea", "sandbox": "dev"})
    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(path))
    dev = Sandbox(platform_instance="bodea", name="dev")
    warehouse.recreate(dev)
    land(load_config(), "marketo_111_aaa_111", "raw_marketo_leads", "leads", "b1", NOW,
         [lead("1"), lead("2", email="not-an-email")])
    check_landed("marketo_111_aaa_111", "run-1", NOW)
    for sandbox in (clean_sandboxes[0], dev):
        with warehouse.connect(sandbox) as conn:
            assert conn.execute("SELECT id FROM raw_marketo_leads").fetchall() == [("1",)]
            assert conn.execute("SELECT reason FROM raw_quarantine").fetchall() == [("email not well-formed",)]
