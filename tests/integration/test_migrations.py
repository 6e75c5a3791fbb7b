"""The migrations are the schema: they match the models on every backend."""

import pytest

from services.common.db.migrate import drift, upgrade
from tests.integration.services import Cluster, postgres_database

pytestmark = pytest.mark.integration


def test_sqlite_upgrade_matches_models(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.sqlite"
    upgrade(url)
    assert drift(url) == []


def test_manage_db_upgrade_on_empty_postgresql_then_check_reports_no_drift(tmp_path):
    with postgres_database() as url:
        cluster = Cluster({"OVERCAST_DATABASE__CONNECTION": url}, tmp_path, 0)
        assert cluster.manage("db", "upgrade") == "database is at the newest schema"
        assert cluster.manage("db", "check") == "no drift"
        assert drift(url) == []
        # Upgrading again is a no-op.
        assert cluster.manage("db", "upgrade") == "database is at the newest schema"
