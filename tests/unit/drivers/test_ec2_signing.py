"""Our SigV4 against botocore's SigV4Auth (a test-only oracle), request by request."""

import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from drivers.compute.ec2.signing import Credentials, sign

FORM = "application/x-www-form-urlencoded; charset=utf-8"
CASES = [
    (
        "POST",
        "https://ec2.us-east-1.amazonaws.com/",
        {"Content-Type": FORM},
        b"Action=DescribeInstances&Version=2016-11-15",
        "us-east-1",
        "ec2",
        None,
    ),
    (
        "POST",
        "http://127.0.0.1:5000/",
        {"Content-Type": FORM},
        b"Action=RunInstances&Version=2016-11-15&TagSpecification.1.Tag.1.Value=a%20b%2Fc",
        "eu-central-1",
        "ec2",
        None,
    ),
    (
        "GET",
        "https://ec2.eu-west-3.amazonaws.com/?Version=2016-11-15&Action=DescribeImages"
        "&Filter.1.Name=name&Filter.1.Value.1=ubuntu%2A",
        {},
        b"",
        "eu-west-3",
        "ec2",
        None,
    ),
    (
        "POST",
        "https://iam.amazonaws.com/",
        {"Content-Type": FORM, "X-Extra": "  spaced   out "},
        b"Action=ListUsers&Version=2010-05-08",
        "us-east-1",
        "iam",
        "SESSION-TOKEN",
    ),
    (
        "POST",
        "https://ec2.ap-south-1.amazonaws.com/",
        {"Content-Type": FORM},
        b"Action=ImportKeyPair&KeyName=k%C3%A9y",
        "ap-south-1",
        "ec2",
        None,
    ),
    (
        "PUT",
        "https://ec2.us-west-2.amazonaws.com/a%20path/x",
        {"Content-Type": "text/plain"},
        b"\x00\xffbinary",
        "us-west-2",
        "ec2",
        None,
    ),
]


@pytest.mark.parametrize(("method", "url", "headers", "body", "region", "service", "token"), CASES)
def test_signature_matches_botocore(method, url, headers, body, region, service, token):
    oracle = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(
        BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token), service, region
    ).add_auth(oracle)
    moment = datetime.datetime.strptime(oracle.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.UTC
    )
    ours = sign(
        method,
        url,
        headers,
        body,
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token),
        region,
        service,
        moment,
    )
    assert ours["Authorization"] == oracle.headers["Authorization"]
    if token:
        assert ours["X-Amz-Security-Token"] == token


def test_credentials_never_print_the_secret():
    assert "SECRET" not in repr(Credentials("AKID", "SECRET"))
