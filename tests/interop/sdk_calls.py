"""Calls the CAMS simulator with the official Alibaba Cloud Python SDK.

Run by tests/sim.rs (module `interop`) with the virtual environment of
scripts/install-test-tools. Prints one JSON object on stdout describing every outcome; the Rust
test asserts on it and on the simulator's counters. Exits non-zero only when the SDK itself
cannot be used (import or configuration problems), never because a call failed: failures are
results.

Usage:
  sdk_calls.py --endpoint 127.0.0.1:PORT --algorithm v2|v3 --key-id ID --secret SECRET
               --space SPACE --number NUMBER --group-id GROUP_ID
               [--sts-key-id ID --sts-secret SECRET --sts-token TOKEN]
"""

import argparse
import json
import sys

from alibabacloud_cams20200606 import models as cams_models
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi import utils_models as open_api_models
from darabonba.runtime import RuntimeOptions


def client(endpoint, algorithm, key_id, secret, token=None):
    config = open_api_models.Config(
        access_key_id=key_id,
        access_key_secret=secret,
        security_token=token,
        endpoint=endpoint,
        protocol="HTTP",
    )
    if algorithm == "v2":
        # Signature V1 (HMAC-SHA1) is what the SDK calls "v2"; unset means V3.
        config.signature_algorithm = "v2"
    return Client(config)


def outcome(call):
    """Runs `call` and turns its result or its exception into a JSON-able dict."""
    try:
        body = call().body
        return {"ok": True, "body": body.to_map()}
    except Exception as error:  # the SDK raises several exception types; all are results here
        return {
            "ok": False,
            "type": type(error).__name__,
            "code": getattr(error, "code", None),
            "statusCode": getattr(error, "status_code", None),
            "message": str(getattr(error, "message", error)),
            "requestId": getattr(error, "request_id", None),
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--algorithm", choices=["v2", "v3"], required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--space", required=True)
    parser.add_argument("--number", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--sts-key-id")
    parser.add_argument("--sts-secret")
    parser.add_argument("--sts-token")
    args = parser.parse_args()

    runtime = RuntimeOptions(read_timeout=10000, connect_timeout=5000)
    good = client(args.endpoint, args.algorithm, args.key_id, args.secret)
    bad = client(args.endpoint, args.algorithm, args.key_id, args.secret + "-wrong")
    subject = f"Interop {args.algorithm} *1* + more"
    description = "Hello world ~ café/ü & 100%"

    update = cams_models.UpdateChatGroupRequest(
        business_number=args.number,
        cust_space_id=args.space,
        group_id=args.group_id,
        channel_type="WHATSAPP",
        subject=subject,
        description=description,
    )
    listing = cams_models.ListChatGroupRequest(
        business_number=args.number,
        cust_space_id=args.space,
        page=cams_models.ListChatGroupRequestPage(index=1, size=20),
    )
    add = cams_models.AddChatGroupRequest(
        business_number=args.number,
        cust_space_id=args.space,
        channel_type="WHATSAPP",
        subject=f"Created by {args.algorithm}",
    )
    results = {
        "subject": subject,
        "description": description,
        "update": outcome(lambda: good.update_chat_group_with_options(update, runtime)),
        "list": outcome(lambda: good.list_chat_group_with_options(listing, runtime)),
        "add": outcome(lambda: good.add_chat_group_with_options(add, runtime)),
        "wrongSecret": outcome(lambda: bad.update_chat_group_with_options(update, runtime)),
    }
    if args.sts_key_id:
        sts = client(args.endpoint, args.algorithm, args.sts_key_id, args.sts_secret, args.sts_token)
        results["stsList"] = outcome(lambda: sts.list_chat_group_with_options(listing, runtime))
        wrong_token = client(
            args.endpoint, args.algorithm, args.sts_key_id, args.sts_secret, args.sts_token + "x"
        )
        results["stsWrongToken"] = outcome(
            lambda: wrong_token.list_chat_group_with_options(listing, runtime)
        )
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
