"""Walks a group through its lifecycle on the CAMS simulator with the official Alibaba Cloud
Python SDK: AddChatGroup, ListChatGroup while the group is CREATING and once it is ACTIVE,
AddChatGroupInviteLink, DeleteChatGroupInviteLink and DeleteChatGroup.

Run by tests/sim.rs (module `interop`) against a simulator whose clock is fixed and whose
creation delay is longer than nothing: the script moves the simulator's clock past the delay
with the admin endpoint `POST /_sim/clock` between the two listings, so the CREATING and ACTIVE
states are seen by the clock, never by waiting. Prints one JSON object on stdout with every
outcome (the bodies as the SDK's response models parsed them); exits non-zero only when the
SDK itself cannot be used.

Usage:
  sdk_lifecycle.py --endpoint 127.0.0.1:PORT --algorithm v2|v3 --key-id ID --secret SECRET
                   --space SPACE --number NUMBER --clock-offset-seconds SECONDS
"""

import argparse
import json
import sys
import urllib.request

from alibabacloud_cams20200606 import models as cams_models
from darabonba.runtime import RuntimeOptions

from sdk_calls import client, outcome


def move_clock(endpoint, offset_seconds):
    """Runs the simulator's clock `offset_seconds` ahead of the system clock."""
    request = urllib.request.Request(
        f"http://{endpoint}/_sim/clock",
        data=json.dumps({"offsetSeconds": offset_seconds}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--algorithm", choices=["v2", "v3"], required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--space", required=True)
    parser.add_argument("--number", required=True)
    parser.add_argument("--clock-offset-seconds", type=int, required=True)
    args = parser.parse_args()

    runtime = RuntimeOptions(read_timeout=10000, connect_timeout=5000)
    cams = client(args.endpoint, args.algorithm, args.key_id, args.secret)
    subject = f"Lifecycle {args.algorithm}"
    listing = cams_models.ListChatGroupRequest(
        business_number=args.number,
        cust_space_id=args.space,
        page=cams_models.ListChatGroupRequestPage(index=1, size=100),
    )

    def list_groups():
        return outcome(lambda: cams.list_chat_group_with_options(listing, runtime))

    def keyed(model, group_id):
        return model(
            business_number=args.number,
            cust_space_id=args.space,
            group_id=group_id,
            channel_type="WHATSAPP",
        )

    def add_link(group_id):
        request = keyed(cams_models.AddChatGroupInviteLinkRequest, group_id)
        result = outcome(
            lambda: cams.add_chat_group_invite_link_with_options(request, runtime)
        )
        if result["ok"]:
            # The attribute the SDK's model gives the link, not only the mapped body.
            result["inviteLink"] = (
                cams_models.AddChatGroupInviteLinkResponseBody()
                .from_map(result["body"])
                .invite_link
            )
        return result

    def delete_link(group_id):
        request = keyed(cams_models.DeleteChatGroupInviteLinkRequest, group_id)
        return outcome(
            lambda: cams.delete_chat_group_invite_link_with_options(request, runtime)
        )

    def delete_group(group_id):
        request = keyed(cams_models.DeleteChatGroupRequest, group_id)
        return outcome(lambda: cams.delete_chat_group_with_options(request, runtime))

    add = cams_models.AddChatGroupRequest(
        business_number=args.number,
        cust_space_id=args.space,
        channel_type="WHATSAPP",
        subject=subject,
        description="Created through the SDK",
    )
    results = {"subject": subject}
    results["add"] = outcome(lambda: cams.add_chat_group_with_options(add, runtime))
    results["listCreating"] = list_groups()
    group_id = next(
        (
            item.get("GroupId")
            for item in results["listCreating"].get("body", {}).get("Data", {}).get("List", [])
            if item.get("Subject") == subject
        ),
        None,
    )
    results["groupId"] = group_id
    if group_id is None:
        json.dump(results, sys.stdout)
        sys.stdout.write("\n")
        return
    results["addLinkWhileCreating"] = add_link(group_id)
    results["deleteWhileCreating"] = delete_group(group_id)
    results["clock"] = move_clock(args.endpoint, args.clock_offset_seconds)
    results["listActive"] = list_groups()
    results["addLink"] = add_link(group_id)
    results["listWithLink"] = list_groups()
    results["deleteLink"] = delete_link(group_id)
    results["listWithoutLink"] = list_groups()
    results["deleteLinkAgain"] = delete_link(group_id)
    results["deleteGroup"] = delete_group(group_id)
    results["deleteGroupAgain"] = delete_group(group_id)
    results["addLinkAfterDelete"] = add_link(group_id)
    results["listAfterDelete"] = list_groups()
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
