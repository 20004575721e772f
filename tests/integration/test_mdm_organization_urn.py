"""LinkedIn organization URNs from the MDM drop's optional `linkedin_organization_urn` column, on Bodea:
landed, validated, normalised into activation_organization_urn (by MDM id) and read by the LinkedIn
company export; a later drop withdraws what it no longer carries; rows inserted by hand stay."""

import csv
from datetime import timedelta

import pytest
from emulators import load_scenario

from b2b_cdp import ingest, warehouse
from b2b_cdp.config import load_config
from tests.integration.test_buying_groups import evaluate
from tests.integration.test_explain import stitched  # noqa: F401  (the fixture)
from tests.integration.test_pipeline_stages import CLOCK, one

TOWNSEND_URN = "urn:li:organization:1035"
HAND_MADE = "urn:li:organization:42"


def mdm_source() -> str:
    return next(s.id for s in load_config().sources if s.type == "mdm")


def drop(fleet, run_id: str, urns: dict[str, str], hours: int) -> None:
    """The MDM's next drop: Bodea's golden records with these URNs, landed and normalised."""
    fleet.write_mdm_drop([dict(a, linkedin_organization_urn=urns.get(a["mdm_id"]))
                          for a in fleet.scenario.mdm_accounts])
    ingest.land_mdm(mdm_source(), run_id, CLOCK + timedelta(hours=hours))
    ingest.normalize(mdm_source())


def urn_rows(sandbox) -> dict[str, tuple]:
    return {key: (urn, source) for key, urn, source in
            one(sandbox, "SELECT account_key, organization_urn, source_id FROM activation_organization_urn")}


def exported_urns(sandbox) -> dict[str, str | None]:
    """The LinkedIn company export's rows of the new_product accounts (Acme, Globex, Townsend)."""
    with warehouse.connect(sandbox) as conn:
        rows = warehouse.fetch_dicts(conn, "activation/export_account_rows",
                                     {"segment_id": None, "solution_interest": "new_product"})
    return {row["mdm_id"]: row["organization_urn"] for row in rows}


def header(fleet) -> list[str]:
    with open(fleet.dropzone / "mdm" / "crossref.csv", newline="") as handle:
        return next(csv.reader(handle))


def test_drop_urns_reach_the_export_and_a_later_drop_withdraws_them(stitched, bodea_fleet):
    evaluate(load_config(), stitched, CLOCK)
    # Globex's URN was inserted by hand: no drop replaces or withdraws it.
    one(stitched, "INSERT INTO activation_organization_urn (account_key, organization_urn) "
                  "VALUES ('MDM-GLOBEX', %s) RETURNING account_key", (HAND_MADE,))

    drop(bodea_fleet, "run-2", {"MDM-TOWNSEND": TOWNSEND_URN, "MDM-GLOBEX": "urn:li:organization:99"}, hours=1)
    assert header(bodea_fleet)[-1] == "linkedin_organization_urn"
    assert urn_rows(stitched) == {"MDM-TOWNSEND": (TOWNSEND_URN, "mdm"), "MDM-GLOBEX": (HAND_MADE, None)}
    assert exported_urns(stitched) == {"MDM-TOWNSEND": TOWNSEND_URN, "MDM-GLOBEX": HAND_MADE, "MDM-ACME": None}

    # The next drop carries no URN (nor the column): Townsend's is withdrawn, the hand-made row stays.
    drop(bodea_fleet, "run-3", {}, hours=2)
    assert header(bodea_fleet) == ["mdm_id", "name", "member_source_key"]
    assert urn_rows(stitched) == {"MDM-GLOBEX": (HAND_MADE, None)}
    assert exported_urns(stitched) == {"MDM-TOWNSEND": None, "MDM-GLOBEX": HAND_MADE, "MDM-ACME": None}


def test_a_bad_urn_refuses_the_whole_drop_and_keeps_the_last_one(stitched, bodea_fleet):
    drop(bodea_fleet, "run-2", {"MDM-TOWNSEND": TOWNSEND_URN}, hours=1)
    landed = one(stitched, "SELECT _batch_id, count(*) FROM raw_mdm_crossref GROUP BY 1 ORDER BY 1")
    xrefs = one(stitched, "SELECT mdm_id, account_key FROM core_account_xref ORDER BY 1, 2")

    # Acme is line 4 (Townsend's two members are lines 2 and 3).
    with pytest.raises(ValueError, match=r"^MDM cross-reference line 4: linkedin_organization_urn "
                                         r"'urn:li:company:5' is not urn:li:organization:<digits>$"):
        drop(bodea_fleet, "run-3", {"MDM-TOWNSEND": TOWNSEND_URN, "MDM-ACME": "urn:li:company:5"}, hours=2)
    assert one(stitched, "SELECT _batch_id, count(*) FROM raw_mdm_crossref GROUP BY 1 ORDER BY 1") == landed
    assert one(stitched, "SELECT count(*) FROM ops_ingest_batch WHERE batch_id LIKE '%run-3%'") == [(0,)]
    ingest.normalize(mdm_source())
    assert one(stitched, "SELECT mdm_id, account_key FROM core_account_xref ORDER BY 1, 2") == xrefs
    assert urn_rows(stitched) == {"MDM-TOWNSEND": (TOWNSEND_URN, "mdm")}


def test_one_mdm_id_with_two_urns_is_refused():
    lines = ["mdm_id,name,member_source_key,linkedin_organization_urn\r\n",
             "M1,Acme,a@x.Salesforce,urn:li:organization:1\r\n",
             "M1,Acme,b@x.Salesforce,\r\n",                        # an empty cell says nothing
             "M1,Acme,c@x.Salesforce,urn:li:organization:2\r\n"]
    with pytest.raises(ValueError, match=r"^MDM cross-reference line 4: 'M1' has linkedin_organization_urn "
                                         r"'urn:li:organization:2', but line 2 gave it 'urn:li:organization:1'$"):
        list(ingest.read_mdm_crossref(lines))
    assert len(list(ingest.read_mdm_crossref(lines[:3]))) == 2


def test_the_scenario_takes_an_optional_urn_per_mdm_account(tmp_path):
    path = tmp_path / "mdm.yaml"
    path.write_text('clock: "2026-11-20T12:00:00Z"\nmdm:\n  accounts:\n'
                    '    - {mdm_id: M1, name: Acme, members: [a], linkedin_organization_urn: "urn:li:organization:7"}\n'
                    '    - {mdm_id: M2, name: Globex, members: [b]}\n')
    assert [a["linkedin_organization_urn"] for a in load_scenario(path).mdm_accounts] == ["urn:li:organization:7", None]
    path.write_text('clock: "2026-11-20T12:00:00Z"\nmdm:\n  accounts:\n'
                    '    - {mdm_id: M1, members: [a], linkedin_organization_urn: 7}\n')
    with pytest.raises(ValueError, match=r"mdm.accounts\[0\].linkedin_organization_urn: expected a string"):
        load_scenario(path)
