"""API keys: shown once, listed by prefix, revoked and expired everywhere fast."""

from __future__ import annotations

import datetime

from sqlalchemy import update

from services.api.wsgi import make_app
from services.common.db.models import ApiKey, utcnow
from services.common.db.session import session_scope
from tests.helpers import wait_for


def test_a_key_is_shown_once_then_only_by_prefix(service):
    made = service.call("POST", "/v1/keys", body={"name": "ci", "role": "member"})
    assert made.status == 201, made.body
    secret = made.body["secret"]
    assert made.body["key"]["prefix"] == secret[:11] and secret.startswith("oc_")
    assert made.headers["Location"].endswith(f"/v1/keys/{made.body['key']['id']}")
    listed = service.call("GET", "/v1/keys")
    assert secret not in str(listed.body) and secret[11:] not in str(listed.body)
    (entry,) = [k for k in listed.body["keys"] if k["id"] == made.body["key"]["id"]]
    assert entry["status"] == "active" and entry["last_used_at"] is None
    assert service.call("GET", "/v1/nodes", key=secret).status == 200
    assert service.call("GET", f"/v1/keys/{entry['id']}").body["key"]["last_used_at"] is not None


def test_revoking_a_key_refuses_it_in_every_api_process(service):
    secret = service.call("POST", "/v1/keys", body={"name": "gone"}).body["secret"]
    key_id = service.call("GET", "/v1/keys").body["keys"][-1]["id"]
    other_process = make_app(service.context)  # its own key cache, like a second overcast-api
    assert service.call("GET", "/v1/nodes", key=secret, app=other_process).status == 200
    assert service.call("DELETE", f"/v1/keys/{key_id}").status == 204
    # This process forgets it at once; the other within [api] key_cache_seconds.
    assert service.call("GET", "/v1/nodes", key=secret).status == 401
    wait_for(
        lambda: service.call("GET", "/v1/nodes", key=secret, app=other_process).status == 401,
        timeout=1.0,
        what="the other process to refuse the revoked key",
    )
    assert service.call("GET", f"/v1/keys/{key_id}").body["key"]["status"] == "revoked"


def test_an_expired_key_is_refused(service):
    made = service.call("POST", "/v1/keys", body={"name": "brief", "expires_in": 60}).body
    secret, key_id = made["secret"], made["key"]["id"]
    assert service.call("GET", "/v1/nodes", key=secret).status == 200
    with session_scope(service.context.sessions) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(expires_at=utcnow() - datetime.timedelta(seconds=1))
        )
    wait_for(
        lambda: service.call("GET", "/v1/nodes", key=secret).status == 401,
        timeout=1.0,
        what="the expired key to be refused",
    )
    assert service.call("GET", f"/v1/keys/{key_id}").body["key"]["status"] == "expired"


def test_who_may_make_which_keys(service):
    assert service.call("POST", "/v1/keys", key="member", body={"name": "x"}).status == 403
    operator = service.call("POST", "/v1/keys", body={"name": "x", "role": "operator"})
    assert operator.status == 400 and operator.error["field"] == "role"
    short = service.call("POST", "/v1/keys", body={"name": "x", "expires_in": 5})
    assert short.status == 400 and short.error["field"] == "expires_in"
    theirs = service.call(
        "POST", "/v1/keys", body={"name": "x", "project_id": service.projects["beta"]}
    )
    assert theirs.status == 404


def test_manage_lists_revokes_and_rotates_keys(service):
    listed = service.manage("key", "list", "--project", "alpha")
    assert listed.exit_code == 0, listed.output
    assert service.keys["member"][:11] in listed.output
    assert service.keys["member"] not in listed.output

    with session_scope(service.context.sessions) as session:
        member_id = session.query(ApiKey.id).filter(ApiKey.name == "m").scalar()
    rotated = service.manage("key", "rotate", member_id)
    assert rotated.exit_code == 0, rotated.output
    new_secret = rotated.stdout.strip().splitlines()[-1]
    assert new_secret.startswith("oc_") and new_secret != service.keys["member"]
    wait_for(
        lambda: service.call("GET", "/v1/nodes", key="member").status == 401,
        timeout=1.0,
        what="the rotated-out key to be refused",
    )
    assert service.call("GET", "/v1/nodes", key=new_secret).status == 200

    operator = service.manage("key", "create", "alpha", "--role", "operator", "--name", "ops")
    assert operator.exit_code == 0 and operator.output.startswith("oc_")
    revoked = service.manage("key", "revoke", "key-does-not-exist")
    assert revoked.exit_code != 0 and "no key key-does-not-exist" in revoked.output
    bad_project = service.manage("key", "create", "nowhere")
    assert bad_project.exit_code != 0 and "no project named nowhere" in bad_project.output
