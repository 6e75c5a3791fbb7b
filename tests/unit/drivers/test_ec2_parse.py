"""EC2 XML to values: every instance state, tags, addresses (no server needed)."""

import pytest
from lxml import etree

from drivers.compute.base import NodeState
from drivers.compute.ec2.parse import NODE_STATE_MAP, to_nodes

DOCUMENT = """<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<reservationSet><item><instancesSet><item>
  <instanceId>i-1</instanceId><imageId>ami-1</imageId><instanceType>t3.micro</instanceType>
  <instanceState><code>16</code><name>{state}</name></instanceState>
  <privateIpAddress>10.0.0.5</privateIpAddress>{public}
  <placement><availabilityZone>eu-west-3b</availabilityZone></placement>
  <launchTime>2026-11-21T10:00:00.000Z</launchTime><keyName>k</keyName>
  <tagSet><item><key>Name</key><value>web</value></item></tagSet>
</item></instancesSet></item></reservationSet></DescribeInstancesResponse>"""


@pytest.mark.parametrize(
    ("state", "expected"), [*NODE_STATE_MAP.items(), ("something-new", NodeState.UNKNOWN)]
)
def test_every_instance_state_maps(state, expected):
    root = etree.fromstring(DOCUMENT.format(state=state, public="").encode())
    (node,) = to_nodes(root)
    assert node.state is expected


def test_instance_fields():
    root = etree.fromstring(
        DOCUMENT.format(state="running", public="<ipAddress>203.0.113.9</ipAddress>").encode()
    )
    (node,) = to_nodes(root)
    assert (node.id, node.name, node.size_id, node.image_id) == ("i-1", "web", "t3.micro", "ami-1")
    assert node.public_ips == ("203.0.113.9",) and node.private_ips == ("10.0.0.5",)
    assert node.address == "203.0.113.9"
    assert node.location_id == "eu-west-3b"
    assert node.created_at.isoformat() == "2026-11-21T10:00:00+00:00"
    assert node.extra == {"tags": {"Name": "web"}, "key_name": "k", "client_token": None}


def test_namespace_without_trailing_slash_parses_too():
    text = DOCUMENT.format(state="running", public="").replace("2016-11-15/", "2016-11-15")
    assert len(to_nodes(etree.fromstring(text.encode()))) == 1
