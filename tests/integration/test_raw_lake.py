"""The columnar raw lake: new source fields become columns, bulk files land with one COPY, rows
landed by the older jsonb layout survive the migration, unusable field names are refused by name."""

from datetime import datetime, timezone

import pytest
from psycopg import sql

from b2b_cdp import warehouse
from b2b_cdp.config import Sandbox, load_config
from b2b_cdp.ingest import land

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
SOURCE = "marketo_111_aaa_111"


def rows(sandbox, query):
    with warehouse.connect(sandbox) as conn:
        return conn.execute(query).fetchall()


def test_a_new_source_field_becomes_a_column_and_old_rows_read_null(clean_sandboxes):
    sandbox, cfg = clean_sandboxes[0], load_config()
    land(cfg, SOURCE, "raw_marketo_leads", "leads", "b1", NOW, [{"id": 1, "email": "a@x.com"}])
    land(cfg, SOURCE, "raw_marketo_leads", "leads", "b2", NOW,
         [{"id": 2, "email": "b@x.com", "Shoe_Size__c": 44, "unsubscribed": True, "tags": ["x", "y"]}])
    assert rows(sandbox, 'SELECT id, "Shoe_Size__c", unsubscribed, tags, _source_key, _batch_id, _instance '
                         "FROM raw_marketo_leads ORDER BY id") == [
        ("1", None, None, None, "1@111-AAA-111.Marketo", "b1", "111-AAA-111"),
        ("2", "44", "true", '["x","y"]', "2@111-AAA-111.Marketo", "b2", "111-AAA-111")]
    # Re-landing a batch replaces it.
    land(cfg, SOURCE, "raw_marketo_leads", "leads", "b2", NOW, [{"id": 3}])
    assert rows(sandbox, "SELECT id FROM raw_marketo_leads ORDER BY id") == [("1",), ("3",)]


def test_a_csv_file_lands_with_its_header_as_columns(clean_sandboxes):
    sandbox = clean_sandboxes[0]
    data = b'id,email,Region__c\n7,"g@x.com",EMEA\n8,null,null\n'
    with warehouse.connect(sandbox) as conn:
        count = warehouse.land_raw_csv(conn, "raw_marketo_leads", batch_id="f1", instance="111-AAA-111",
                                       chunks=[data[:9], data[9:]], key_column="id")
    assert count == 2
    assert rows(sandbox, 'SELECT _source_key, email, "Region__c", _batch_id FROM raw_marketo_leads '
                         "ORDER BY 1") == [("7@111-AAA-111.Marketo", "g@x.com", "EMEA", "f1"),
                                           ("8@111-AAA-111.Marketo", None, None, "f1")]


def test_a_large_file_lands_whole_whatever_its_chunks(clean_sandboxes):
    """A file of many COPY slices, arriving in chunks that cut its rows and its multi-byte
    characters anywhere, lands every row once, as written; so does landing it again."""
    sandbox = clean_sandboxes[0]
    data = b"id,email,title\n" + b"".join(
        f'{i},p{i}@x.com,"Directrice, R\u00e9gion {i % 97}"\n'.encode() for i in range(60_000))
    cuts = list(range(0, len(data), 100_003)) + [len(data)]
    chunks = [data[a:b] for a, b in zip(cuts, cuts[1:])]
    assert len(data) > 10 * warehouse.FlushingWriter.SLICE
    for _ in range(2):
        with warehouse.connect(sandbox) as conn:
            assert warehouse.land_raw_csv(conn, "raw_marketo_leads", batch_id="big", instance="111-AAA-111",
                                          chunks=chunks, key_column="id") == 60_000
    assert rows(sandbox, "SELECT count(*), count(DISTINCT id), max(id::int) FROM raw_marketo_leads") == [
        (60_000, 60_000, 59_999)]
    assert rows(sandbox, "SELECT title FROM raw_marketo_leads WHERE id = '59999'") == [("Directrice, R\u00e9gion 53",)]


def test_normalisation_reads_only_the_batches_it_has_not_normalised(clean_sandboxes):
    from b2b_cdp import ingest

    sandbox, cfg = clean_sandboxes[0], load_config()
    later = NOW.replace(hour=13)
    land(cfg, SOURCE, "raw_marketo_leads", "leads", "n1", NOW, [{"id": 1, "email": "a@x.com"}])
    ingest.normalize(SOURCE)
    # Were batch n1 read again, the next run would put its email back.
    with warehouse.connect(sandbox) as conn:
        conn.execute("UPDATE core_person SET email = 'kept@x.com' WHERE source_key = '1@111-AAA-111.Marketo'")
    land(cfg, SOURCE, "raw_marketo_leads", "leads", "n2", later, [{"id": 2, "email": "b@x.com"}])
    ingest.normalize(SOURCE)
    assert rows(sandbox, "SELECT source_key, email, extracted_at FROM core_person ORDER BY 1") == [
        ("1@111-AAA-111.Marketo", "kept@x.com", NOW), ("2@111-AAA-111.Marketo", "b@x.com", later)]
    assert rows(sandbox, "SELECT batch_id FROM ops_ingest_batch WHERE normalized_at IS NULL") == []
    # A re-landed batch is normalised again; within one batch the row written last wins.
    land(cfg, SOURCE, "raw_marketo_leads", "leads", "n1", later,
         [{"id": 1, "email": "old@x.com"}, {"id": 1, "email": "new@x.com"}])
    assert rows(sandbox, "SELECT batch_id FROM ops_ingest_batch WHERE normalized_at IS NULL") == [("n1",)]
    ingest.normalize(SOURCE)
    assert rows(sandbox, "SELECT email FROM core_person WHERE source_key = '1@111-AAA-111.Marketo'") == [
        ("new@x.com",)]


@pytest.mark.parametrize("field, problem", [("_batch_id", "reserves"), ("x" * 64, "63 bytes")])
def test_unusable_field_names_are_refused_by_name(clean_sandboxes, field, problem):
    with pytest.raises(ValueError, match=problem) as refused:
        land(load_config(), SOURCE, "raw_marketo_leads", "leads", "b1", NOW, [{"id": 1, field: "v"}])
    assert "raw_marketo_leads" in str(refused.value)
    assert rows(clean_sandboxes[0], "SELECT count(*) FROM raw_marketo_leads") == [(0,)]


def test_rows_of_the_jsonb_layout_are_carried_over(warehouse_conn):
    sandbox = Sandbox(platform_instance="upgrade", name="prod")
    with warehouse.connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(sandbox.schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(sandbox.schema)))
        warehouse.use_sandbox(conn, sandbox)
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz "
                     "NOT NULL DEFAULT clock_timestamp())")
        for path in sorted(warehouse.MIGRATIONS_DIR.glob("00*.sql")):   # the jsonb-era migrations
            conn.execute(path.read_text())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
        conn.execute("""INSERT INTO raw_marketo_leads (_source_key, _instance, _batch_id, _extracted_at, _record)
                        VALUES ('5@111-AAA-111.Marketo', '111-AAA-111', 'old', %s,
                                '{"id": 5, "email": "e@x.com", "unsubscribed": false,
                                  "Custom__c": {"a": 1}, "company": null}')""", (NOW,))
    assert warehouse.migrate(sandbox)[0] == "010_columnar_raw"
    assert rows(sandbox, 'SELECT _source_key, id, email, unsubscribed, "Custom__c", company, _batch_id '
                         "FROM raw_marketo_leads") == [
        ("5@111-AAA-111.Marketo", "5", "e@x.com", "false", '{"a": 1}', None, "old")]
    # The rows moved to raw_marketo_leads__rows, which stores no source key; the lake's name is a
    # view computing it (migration 047).
    assert rows(sandbox, "SELECT table_name, table_type FROM information_schema.tables "
                         "WHERE table_schema = current_schema() AND table_name LIKE 'raw\\_marketo\\_leads%%' "
                         "ORDER BY 1") == [("raw_marketo_leads", "VIEW"), ("raw_marketo_leads__rows", "BASE TABLE")]
    assert rows(sandbox, "SELECT count(DISTINCT table_name), count(*) FILTER (WHERE column_name = '_source_key') "
                         "FROM information_schema.columns WHERE table_schema = current_schema() "
                         "AND table_name LIKE 'raw\\_%%\\_\\_rows'") == [(13, 0)]
    # Rows carry their batch's number; its id and instance are kept once, in raw_batch (migration 050).
    assert rows(sandbox, "SELECT count(*) FILTER (WHERE column_name = '_batch'), "
                         "count(*) FILTER (WHERE column_name IN ('_batch_id', '_instance')) "
                         "FROM information_schema.columns WHERE table_schema = current_schema() "
                         "AND table_name LIKE 'raw\\_%%\\_\\_rows'") == [(13, 0)]
    assert rows(sandbox, "SELECT batch_id, instance FROM raw_batch") == [("old", "111-AAA-111")]
    # Their batch indexes are summarised as ranges fill (migration 048).
    assert rows(sandbox, "SELECT count(*) FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid "
                         "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relnamespace = current_schema()::regnamespace "
                         "AND t.relname LIKE 'raw\\_%%\\_\\_rows' AND 'autosummarize=on' = ANY(i.reloptions)") == [(13,)]
    # Its batch's times moved to the batch table, as normalised.
    assert rows(sandbox, "SELECT batch_id, rows, extracted_at, normalized_at IS NOT NULL FROM ops_ingest_batch") == [
        ("old", 1, NOW, True)]


def test_web_events_land_per_file_and_bad_events_are_quarantined(clean_sandboxes, tmp_path, monkeypatch):
    import json

    from b2b_cdp import ingest
    from b2b_cdp.landing_checks import check_landed

    monkeypatch.setenv("CDP_DROPZONE", tmp_path.as_uri())
    drop = tmp_path / "web_events"
    drop.mkdir()
    ecid = "1" * 38
    events = [{"ecid": ecid, "email": "P1@Townsend.com", "timestamp": "2026-11-19T10:00:00Z",
               "url": "https://bodea.com/products/new-product"},
              {"ecid": "1" * 37, "email": None, "timestamp": "2026-11-19T10:01:00Z", "url": "https://bodea.com/"},
              {"ecid": "2" * 38, "email": "nobody", "timestamp": "2026-11-19T10:02:00Z", "url": "https://bodea.com/"}]
    (drop / "day1.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + "{not json\n")
    assert ingest.land_web_events("web_events", "r1", NOW) == 4
    assert ingest.land_web_events("web_events", "r2", NOW) == 0          # unchanged file: not re-read
    outcome = check_landed("web_events", "r1", NOW)
    assert sorted(v.split(": ", 1)[1] for v in outcome.violations) == [
        "ECID not 38 digits (quarantined)", "email not well-formed (quarantined)",
        "malformed row in the source file (quarantined)"]
    ingest.normalize("web_events")
    sandbox = clean_sandboxes[0]
    assert rows(sandbox, "SELECT ecid, email, event_type, url, person_key FROM core_event") == [
        (ecid, "p1@townsend.com", "Web Visit", "https://bodea.com/products/new-product",
         f"{ecid}@web_events.ECID")]
    # A grown file is landed again as a whole, replacing its earlier batch.
    with (drop / "day1.jsonl").open("a") as handle:
        handle.write(json.dumps({**events[0], "timestamp": "2026-11-19T11:00:00Z"}) + "\n")
    assert ingest.land_web_events("web_events", "r3", NOW) == 5
    assert rows(sandbox, "SELECT count(*) FROM raw_web_events") == [(5,)]
