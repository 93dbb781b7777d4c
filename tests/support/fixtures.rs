//! Objects and settings shared by the tests: a CAMS space, an AccessKey the simulator knows,
//! builders for ChatGroups and credential Secrets, and CAMS requests to send.

use base64::Engine as _;
use cams_operator::cams::{GroupKey, ListChatGroupRequest, UpdateChatGroupRequest};
use cams_operator::crd::{API_GROUP, API_VERSION, KIND};
use serde_json::{Value, json};

/// CAMS customer space of the test groups.
pub const SPACE: &str = "cams-8f2k1x";
/// Business number of the test groups.
pub const NUMBER: &str = "8613800001234";
/// AccessKey ID the simulator accepts.
pub const KEY_ID: &str = "LTAI5tControllerTest";
/// Its secret.
pub const KEY_SECRET: &str = "controller-test-secret-0123456789";
/// A secret the simulator rejects for `KEY_ID`.
pub const WRONG_SECRET: &str = "not-the-right-secret-9876543210";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A credentials Secret with the default key names.
pub fn secret(namespace: &str, name: &str, access_key_secret: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"accessKeyId": b64(KEY_ID), "accessKeySecret": b64(access_key_secret)},
    })
}

/// A ChatGroup for `group_id` in `SPACE`, pointed at `endpoint`.
pub fn chatgroup(namespace: &str, name: &str, group_id: &str, endpoint: &str) -> Value {
    chatgroup_in_space(namespace, name, SPACE, group_id, endpoint)
}

/// A ChatGroup for `group_id` in `space`, pointed at `endpoint`.
pub fn chatgroup_in_space(
    namespace: &str,
    name: &str,
    space: &str,
    group_id: &str,
    endpoint: &str,
) -> Value {
    json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "custSpaceId": space,
            "businessNumber": NUMBER,
            "groupId": group_id,
            "subject": "Support team",
            "description": "Questions about orders",
            "endpoint": endpoint,
        },
    })
}

/// An `UpdateChatGroup` request with a subject and a description in characters that need
/// encoding.
pub fn update_request() -> UpdateChatGroupRequest {
    UpdateChatGroupRequest {
        key: GroupKey {
            cust_space_id: "cams-test".into(),
            business_number: "8613800001234".into(),
            group_id: "EA303TEST".into(),
        },
        channel_type: Some("WHATSAPP".into()),
        subject: Some("Team chat *1*".into()),
        description: Some("Hello world ~ café".into()),
        profile_picture_file: None,
    }
}

/// A `ListChatGroup` request for page `index` of `size` groups.
pub fn list_request(index: u32, size: u32) -> ListChatGroupRequest {
    ListChatGroupRequest {
        cust_space_id: "cams-test".into(),
        business_number: "8613800001234".into(),
        channel_type: None,
        group_status: None,
        subject: None,
        page_index: index,
        page_size: size,
    }
}
