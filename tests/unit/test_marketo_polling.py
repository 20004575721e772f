"""Export status polls slow down while the answer stays the same, and start over when it changes."""

from b2b_cdp.connections import ApiCredentials
from b2b_cdp.sources import marketo
from b2b_cdp.sources.marketo import MarketoClient


def test_polls_of_an_unchanged_status_back_off_and_reset_on_a_change(monkeypatch):
    answers = iter(["Queued"] * 5 + ["Processing"] * 3 + ["Completed"])
    pauses: list[float] = []
    client = MarketoClient(ApiCredentials("http://marketo.invalid", "id", "secret"), poll_seconds=1.0)
    monkeypatch.setattr(client, "export_status", lambda obj, export_id: {"status": next(answers)})
    monkeypatch.setattr(marketo.time, "sleep", pauses.append)

    assert client.wait_for_export("leads", "e1") == {"status": "Completed"}
    # Queued x5: 1, 1.5, 2.25, 3.375, 5.0625; Processing (a change): back to 1, then 1.5, 2.25.
    assert pauses == [1.0, 1.5, 2.25, 3.375, 5.0625, 1.0, 1.5, 2.25]


def test_the_backoff_stops_at_its_ceiling_or_at_poll_seconds_if_longer(monkeypatch):
    for poll_seconds, ceiling in ((1.0, marketo.POLL_BACKOFF_MAX_SECONDS), (60.0, 60.0)):
        answers = iter(["Queued"] * 20 + ["Completed"])
        pauses: list[float] = []
        client = MarketoClient(ApiCredentials("http://marketo.invalid", "id", "secret"), poll_seconds=poll_seconds)
        monkeypatch.setattr(client, "export_status", lambda obj, export_id: {"status": next(answers)})
        monkeypatch.setattr(marketo.time, "sleep", pauses.append)
        client.wait_for_export("activities", "e2")
        assert max(pauses) == ceiling and pauses[-1] == ceiling
