"""No secret used in a full run appears in any log line or any response."""

from __future__ import annotations

import getpass
import json
import logging

import pytest

from drivers.common.ssh_keys import generate_key_pair
from services.common.db.models import Node
from services.common.db.session import session_scope
from tests.functional.harness import service_config, start_service, stop_service
from tests.helpers import wait_for
from tests.integration.conftest import local_state_dir  # noqa: F401  (fixture)

PROVIDER_SECRET = "PROVIDER-SECRET-9f8e7d6c5b4a"


@pytest.fixture
def recorded(tmp_path, local_state_dir):  # noqa: F811
    service = start_service(service_config(tmp_path))
    texts: list[str] = []
    original = service.call

    def call(*args, **kwargs):
        answer = original(*args, **kwargs)
        texts.append(json.dumps(answer.body))
        texts.append(json.dumps(answer.headers))
        return answer

    service.call = call  # type: ignore[method-assign]
    try:
        yield service, texts, local_state_dir
    finally:
        stop_service(service)


def test_a_full_run_leaks_no_secret(recorded, caplog):
    service, texts, state_dir = recorded
    caplog.set_level(logging.DEBUG)
    user_private_key, user_public_key = generate_key_pair()

    answer = service.call(
        "POST",
        "/v1/accounts",
        body={"name": "secretive", "provider": "dummy", "credentials": {"key": PROVIDER_SECRET}},
    )
    assert answer.status == 201
    service.call(
        "POST",
        "/v1/accounts",
        body={"name": "here", "provider": "local", "options": {"state_dir": str(state_dir)}},
    )
    wait_for(
        lambda: all(
            a["catalog_synced_at"] for a in service.call("GET", "/v1/accounts").body["accounts"]
        ),
        what="catalog syncs",
    )

    dummy = service.create_node("plain", accounts=["secretive"])
    local = service.call(
        "POST",
        "/v1/nodes",
        body={
            "name": "deployed",
            "image": "host",
            "providers": ["local"],
            "ssh_public_key": user_public_key,
            "deploy": {"ssh_username": getpass.getuser(), "script": "#!/bin/sh\necho hi\n"},
        },
    )
    operation = service.wait_operation(local.body["operation"]["id"], timeout=60)
    assert operation["status"] == "succeeded", operation
    for node_id in (dummy["id"], local.body["node"]["id"]):
        reboot = service.call("POST", f"/v1/nodes/{node_id}/action", body={"action": "reboot"})
        service.wait_operation(reboot.body["operation"]["id"], timeout=60)
        service.call("GET", f"/v1/nodes/{node_id}")
    service.call("GET", "/v1/nodes", key="oc_wrong-key")
    service.call("POST", "/v1/nodes", body={"name": "bad name!"})
    deletion = service.call("DELETE", f"/v1/nodes/{local.body['node']['id']}")
    service.wait_operation(deletion.body["operation"]["id"])

    with session_scope(service.context.sessions) as session:
        node_keys = [
            service.context.cipher.decrypt(row.ssh_private_key)["private_key"]
            for row in session.query(Node)
            if row.ssh_private_key
        ]
    assert node_keys, "the service generated node keys"
    secrets = {
        "provider secret": PROVIDER_SECRET,
        "encryption key": service.context.config.security.encryption_key,
        "user private key": user_private_key,
        **{f"API key {name}": key for name, key in service.keys.items()},
        **{f"node private key {i}": key for i, key in enumerate(node_keys)},
    }
    logs = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    everything = logs + "\n".join(texts)
    assert len(caplog.records) > 50 and len(texts) > 20
    for name, secret in secrets.items():
        body = secret.strip().splitlines()
        needles = [secret] if len(body) == 1 else body[1:-1]  # PEM: the key material lines
        for needle in needles:
            assert needle not in everything, f"{name} leaked"
