"""Build ``drivers/data/pricing.json`` from public price facts.

Sources: the ``apache-libcloud`` wheel's ``libcloud/data/pricing.json`` (EC2
Linux on-demand prices; its zeros mean "unknown" and are dropped) and our own
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
        "source": "apache-libcloud data/pricing.json (ec2_linux); dummy_catalog.json (dummy)",
        "compute": {
            "dummy": dummy_prices(catalog),
            "ec2": convert_ec2(libcloud_data["compute"]),
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
