"""HAProxy's own answers are in the API's shape: with no app node up, a
client still gets JSON with "status": "failed", not HAProxy's HTML page."""
import requests

from timpe.topology import private


def test_no_node_up_is_a_json_503(tmp_path):
    prepared = private.prepare(tmp_path, identifier="timpe-haproxy-errors")
    with private.running(prepared) as running:
        running.topology.supervisorctl("stop", "app", "app2")
        answer = requests.post(f"{prepared.url}/transactions", timeout=60,
                               json={"sender": "a", "recipient": "b", "amount": 1})
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"status": "failed", "msg": "no app node is available: retry"}
