"""Prices: bundled data, unknown is None, fetched prices, overrides, and updates."""

import datetime
import json
import threading

import pytest

from drivers import pricing
from drivers.pricing import FetchedPrice, InvalidPricingData, PricingStore
from tests.helpers import Reply
from tools import build_pricing


def bundled():
    return json.loads(pricing.bundled_path().read_text())


def test_bundled_data_has_no_zero_or_negative_price():
    prices = [
        price
        for by_size in bundled()["compute"].values()
        for by_region in by_size.values()
        for price in by_region.values()
    ]
    assert prices and min(prices) > 0


def test_bundled_data_is_what_the_conversion_script_makes():
    assert build_pricing.build(build_pricing.libcloud_pricing_path()) == bundled()


def test_known_and_unknown_prices():
    store = PricingStore()
    assert store.get_price("ec2", "t3.micro", "us-east-1") == pytest.approx(0.0104)
    assert store.get_price("dummy", "gpu-1", "sa-east-1") is None
    assert store.get_price("ec2", "t3.micro", "mars-north-1") is None
    assert store.get_price("nobody", "x", "y") is None
    assert str(store.updated) == "2025-03-02"


def test_override_file_wins(tmp_path):
    overrides = tmp_path / "overrides.json"
    overrides.write_text(
        json.dumps(
            {
                "compute": {
                    "dummy": {"large": {"us-east-1": 0.01}},
                    "openstack": {"m1.small": {"*": 0.02}},
                }
            }
        )
    )
    store = PricingStore(override_path=overrides)
    assert store.get_price("dummy", "large", "us-east-1") == 0.01
    assert store.get_price("dummy", "large", "eu-central-1") == 0.0552
    assert store.get_price("openstack", "m1.small", "any-region") == 0.02
    store.set_override_file(None)
    assert store.get_price("dummy", "large", "us-east-1") == 0.048


def fetched(size, region, price, kind="on_demand"):
    at = datetime.datetime(2026, 11, 22, 6, 0, tzinfo=datetime.UTC)
    return FetchedPrice("ec2", region, size, price, "USD", kind, "test", at)


def test_a_quote_says_which_layer_its_price_came_from_and_as_of_when(tmp_path):
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps({"compute": {"ec2": {"t3.small": {"*": 0.015}}}}))
    store = PricingStore(override_path=overrides)
    bundled_quote = store.quote("ec2", "t3.micro", "us-east-1")
    assert (bundled_quote.source, bundled_quote.as_of.date().isoformat()) == (
        "bundled",
        "2025-03-02",
    )
    store.set_fetched(
        "ec2",
        [
            fetched("t3.micro", "us-east-1", 0.0116),
            fetched("t3.micro", "us-east-1", 0.0035, kind="spot"),
            fetched("t3.small", "us-east-1", 0.0232),
        ],
        version="v1",
    )
    micro = store.quote("ec2", "t3.micro", "us-east-1")
    assert (micro.price, micro.source, micro.spot_price) == (0.0116, "fetched", 0.0035)
    assert micro.as_of == datetime.datetime(2026, 11, 22, 6, 0, tzinfo=datetime.UTC)
    small = store.quote("ec2", "t3.small", "us-east-1")
    assert (small.price, small.source) == (0.015, "override")  # the operator wins
    assert store.quote("ec2", "t3.micro", "eu-west-1").source == "bundled"
    assert store.fetched_version("ec2") == "v1"
    assert store.fetched_version("azure") is pricing.NOTHING_FETCHED

    store.set_override_file(None)  # keeps what was fetched
    assert store.get_price("ec2", "t3.small", "us-east-1") == 0.0232
    store.set_fetched("ec2", [], version="v2")  # replaces it all
    assert store.quote("ec2", "t3.micro", "us-east-1") == bundled_quote
    assert store.quote("nobody", "x", "y") == pricing.UNKNOWN


def test_invalid_override_file_is_refused(tmp_path):
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps({"compute": {"dummy": {"large": {"us-east-1": 0}}}}))
    with pytest.raises(InvalidPricingData, match="dummy/large/us-east-1"):
        PricingStore(override_path=overrides)


def newer_data():
    data = bundled()
    data["updated"] = "2026-11-01"
    data["compute"]["dummy"]["large"]["us-east-1"] = 0.05
    return data


def test_update_replaces_the_data(http_server, tmp_path):
    cache = tmp_path / "cache" / "pricing.json"
    store = PricingStore(cache_path=cache)
    http_server.script(Reply(200, json.dumps(newer_data()).encode()))
    assert str(store.update(http_server.url + "/pricing.json")) == "2026-11-01"
    assert store.get_price("dummy", "large", "us-east-1") == 0.05
    assert json.loads(cache.read_text())["updated"] == "2026-11-01"
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".pricing-")]
    # A new store (a restarted process) reads the cached file.
    assert PricingStore(cache_path=cache).get_price("dummy", "large", "us-east-1") == 0.05


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        json.dumps({"format": 1, "updated": "2026-11-01"}).encode(),
        json.dumps(
            {
                "format": 1,
                "updated": "2026-11-01",
                "compute": {"dummy": {"large": {"us-east-1": 0.0}}},
            }
        ).encode(),
        json.dumps({"format": 2, "updated": "2026-11-01", "compute": {}}).encode(),
    ],
    ids=["not-json", "no-compute", "zero-price", "wrong-format"],
)
def test_malformed_update_is_rejected_and_the_old_data_stays(http_server, tmp_path, body):
    cache = tmp_path / "pricing.json"
    store = PricingStore(cache_path=cache)
    http_server.script(Reply(200, json.dumps(newer_data()).encode()), Reply(200, body))
    store.update(http_server.url)
    with pytest.raises(InvalidPricingData):
        store.update(http_server.url)
    assert store.get_price("dummy", "large", "us-east-1") == 0.05
    assert json.loads(cache.read_text())["updated"] == "2026-11-01"
    assert [p.name for p in tmp_path.iterdir()] == ["pricing.json"]


def test_readers_never_see_a_partial_update(http_server, tmp_path):
    store = PricingStore(cache_path=tmp_path / "pricing.json")
    http_server.script(*[Reply(200, json.dumps(newer_data()).encode())] * 5)
    seen = set()
    stop = threading.Event()

    def read():
        while not stop.is_set():
            seen.add(store.get_price("dummy", "large", "us-east-1"))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(5):
        store.update(http_server.url)
    stop.set()
    reader.join()
    assert seen <= {0.048, 0.05}


def test_module_level_helpers_use_the_default_store(monkeypatch, tmp_path):
    monkeypatch.setattr(pricing, "_default_store", None)
    monkeypatch.setenv("OVERCAST_PRICING_CACHE", str(tmp_path / "p.json"))
    assert pricing.get_price("dummy", "large", "us-east-1") == 0.048
    assert pricing.default_store().cache_path == tmp_path / "p.json"


def test_gce_machine_types_are_priced_as_google_bills_them():
    """A worked example: n1-standard-2 in us-central1 is 2 vCPUs at the n1
    vCPU rate plus 7.5 GB at the n1 RAM rate; f1-micro is its one rate."""
    rate = {"on_demand": {"us-central1": {"price": 0.031611}, "europe-west6": {"price": 0.0}}}
    ram = {"on_demand": {"us-central1": {"price": 0.004237}}}
    families = {"n1": {"cpu": rate, "ram": ram}, "f1": {"cpu": rate}}
    families |= {name: {"cpu": rate, "ram": ram} for name in ("n2", "n2d", "e2", "c2")}
    families |= {"g1": {"cpu": rate}}
    prices = build_pricing.convert_gce({"gce_instances": families})
    assert prices["n1-standard-2"] == {"us-central1": round(2 * 0.031611 + 7.5 * 0.004237, 6)}
    assert prices["n1-standard-2"]["us-central1"] == 0.09500  # Google's list price
    assert prices["f1-micro"] == {"us-central1": 0.031611}  # zero (unknown) rates dropped
