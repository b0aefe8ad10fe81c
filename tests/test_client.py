"""The generated Python client of /api/v1 (``medscrm_client``, shipped in the wheel): the committed
package is what scripts/gen_client.sh makes from the current OpenAPI document, and it works against a
real ``medscrm serve`` process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests_support import last_line

sys.path.insert(0, str(Path(__file__).parent / "ingest"))
from test_server_process import Server, run_cli  # noqa: E402

ROOT = Path(__file__).parents[1]
CLIENT = ROOT / "src" / "medscrm_client"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_committed_client_matches_the_current_openapi_document(tmp_path):
    out = tmp_path / "client"
    p = subprocess.run(
        [str(ROOT / "scripts" / "gen_client.sh"), str(out)], capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stdout + p.stderr
    fresh, committed = _files(out), _files(CLIENT)
    stale = sorted(k for k in set(fresh) | set(committed) if fresh.get(k) != committed.get(k))
    assert stale == [], f"src/medscrm_client is out of date (run scripts/gen_client.sh): {stale[:10]}"


def test_the_client_talks_to_a_live_server(tmp_path):
    from medscrm_client import AuthenticatedClient
    from medscrm_client.api.profiles_hcp360 import get_person
    from medscrm_client.api.webhooks import create_subscription as create_sub
    from medscrm_client.api.webhooks import list_subscriptions as list_subs
    from medscrm_client.models import SubscriptionIn, SubscriptionList

    token = last_line(run_cli(tmp_path, "tokens", "create", "--role", "admin"))
    server = Server(tmp_path)
    server.start()
    try:
        with AuthenticatedClient(base_url=server.url, token=token) as client:
            created = create_sub.sync(
                client=client,
                body=SubscriptionIn(url="https://93.184.215.14/hook", events=["consent.changed"]),
            )
            assert created.secret.startswith("whsec_")
            subs = list_subs.sync(client=client)
            assert isinstance(subs, SubscriptionList)
            assert [s.id for s in subs.subscriptions] == [created.id]
            assert subs.subscriptions[0].events == ["consent.changed"]
            assert get_person.sync_detailed("p_nobody", client=client).status_code == 404
    finally:
        server.stop()
