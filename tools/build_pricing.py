"""Build ``drivers/data/pricing.json`` from public price facts.

Sources: the ``apache-libcloud`` wheel's ``libcloud/data/pricing.json`` (EC2
and Azure Linux on-demand prices; GCE's per-vCPU and per-GB rates by machine family
and region, composed into machine-type prices the way Google bills them; its
zeros mean "unknown" and are dropped) and our own
``drivers/data/dummy_catalog.json`` for the dummy provider. Only what our
drivers use is kept, so the file stays small. Re-run after upgrading
libcloud::

    python tools/build_pricing.py [--libcloud-pricing PATH] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
from pathlib import Path
from typing import Any

from drivers.compute.gce.prices import MACHINE_TYPES

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT / "drivers" / "data"

# EC2 families our catalog offers: current general-purpose, compute,
# memory and GPU generations. Older or exotic families are left out.
EC2_FAMILIES = re.compile(r"^(t3|t3a|t4g|m5|m6i|m7i|c5|c6i|c7i|r5|r6i|g4dn|g5)\.")


def libcloud_pricing_path() -> Path:
    import libcloud

    return Path(libcloud.__file__).parent / "data" / "pricing.json"


def convert_ec2(libcloud_compute: dict[str, Any]) -> dict[str, dict[str, float]]:
    prices: dict[str, dict[str, float]] = {}
    for size_id, by_region in sorted(libcloud_compute["ec2_linux"].items()):
        if not EC2_FAMILIES.match(size_id):
            continue
        known = {region: float(price) for region, price in sorted(by_region.items()) if price}
        if known:
            prices[size_id] = known
    return prices


def convert_gce(libcloud_compute: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Machine-type prices per region: vCPUs x the family's vCPU rate + GB x
    its RAM rate (for shared-core types, the family's one instance rate)."""
    families = libcloud_compute["gce_instances"]
    prices: dict[str, dict[str, float]] = {}
    for size_id, (vcpus, ram_gb) in sorted(MACHINE_TYPES.items()):
        family = families[size_id.split("-")[0]]
        cpu = {r: v["price"] for r, v in family["cpu"]["on_demand"].items() if v["price"]}
        if "ram" not in family:  # shared core: the vCPU rate is the instance's
            known = dict(cpu)
        else:
            ram = {r: v["price"] for r, v in family["ram"]["on_demand"].items() if v["price"]}
            known = {
                region: round(vcpus * cpu[region] + ram_gb * ram[region], 6)
                for region in sorted(set(cpu) & set(ram))
            }
        if known:
            prices[size_id] = dict(sorted(known.items()))
    return prices


# Azure Linux sizes our catalog offers, as the pricing data names them (the
# ARM name lowercased without "_": Standard_D2s_v3 -> standardd2sv3).
AZURE_SIZES = re.compile(
    r"^standard(a[0-9]+(m)?v2|a[0-4]|b[0-9]+(l|m)?s|d[0-9]+(a|d)?s?v[345]|e[0-9]+(a|d)?s?v[345]|f[0-9]+sv2)$"
)


def convert_azure(libcloud_compute: dict[str, Any]) -> dict[str, dict[str, float]]:
    prices: dict[str, dict[str, float]] = {}
    for size_id, by_region in sorted(libcloud_compute["azure_linux"].items()):
        if not AZURE_SIZES.match(size_id):
            continue
        known = {region: float(price) for region, price in sorted(by_region.items()) if price}
        if known:
            prices[size_id] = known
    return prices


def dummy_prices(catalog: dict[str, Any]) -> dict[str, dict[str, float]]:
    rules = catalog["prices"]
    unknown = {tuple(pair) for pair in rules["unknown"]}
    prices: dict[str, dict[str, float]] = {}
    for size in catalog["sizes"]:
        prices[size["id"]] = {
            region: round(rules["base"][size["id"]] * factor, 4)
            for region, factor in sorted(rules["region_factor"].items())
            if (size["id"], region) not in unknown
        }
    return prices


def build(libcloud_path: Path) -> dict[str, Any]:
    libcloud_data = json.loads(libcloud_path.read_text())
    catalog = json.loads((DATA / "dummy_catalog.json").read_text())
    updated = datetime.datetime.fromtimestamp(libcloud_data["updated"], datetime.UTC)
    return {
        "format": 1,
        "updated": updated.date().isoformat(),
        "source": (
            "apache-libcloud data/pricing.json (ec2_linux, gce_instances, azure_linux);"
            " dummy_catalog.json (dummy)"
        ),
        "compute": {
            "dummy": dummy_prices(catalog),
            "ec2": convert_ec2(libcloud_data["compute"]),
            "gce": convert_gce(libcloud_data["compute"]),
            "azure": convert_azure(libcloud_data["compute"]),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libcloud-pricing", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=DATA / "pricing.json")
    args = parser.parse_args()
    data = build(args.libcloud_pricing or libcloud_pricing_path())
    args.output.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    sizes = sum(len(table) for table in data["compute"].values())
    print(f"wrote {args.output}: {sizes} sizes, data of {data['updated']}")


if __name__ == "__main__":
    main()
