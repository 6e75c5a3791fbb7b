"""The lazy driver registry."""

import subprocess
import sys

import pytest

from drivers import DriverType, Provider, get_driver, providers, register_driver
from drivers.compute.dummy import DummyNodeDriver


def test_builtin_providers_resolve():
    assert get_driver(DriverType.COMPUTE, Provider.DUMMY) is DummyNodeDriver
    assert get_driver(DriverType.COMPUTE, "local").provider == "local"
    assert {"dummy", "local"} <= set(providers(DriverType.COMPUTE))


def test_unknown_provider_is_a_lookup_error():
    with pytest.raises(LookupError, match="no compute driver for provider 'nowhere'"):
        get_driver(DriverType.COMPUTE, "nowhere")


def test_registered_driver_can_be_a_lazy_path():
    register_driver(DriverType.COMPUTE, "alias-of-dummy", "drivers.compute.dummy:DummyNodeDriver")
    assert get_driver(DriverType.COMPUTE, "alias-of-dummy") is DummyNodeDriver


def test_importing_the_package_imports_no_driver():
    code = "import sys, drivers; print(any(m.startswith('drivers.compute') for m in sys.modules))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"


def test_entry_point_group_is_consulted(monkeypatch):
    class EntryPoint:
        name = "thirdparty"

        def load(self):
            return DummyNodeDriver

    def fake_entry_points(group, name=None):
        assert group == "overcast.drivers.compute"
        return [EntryPoint()] if name in (None, "thirdparty") else []

    monkeypatch.setattr("drivers.entry_points", fake_entry_points)
    assert get_driver(DriverType.COMPUTE, "thirdparty") is DummyNodeDriver
    assert "thirdparty" in providers(DriverType.COMPUTE)
