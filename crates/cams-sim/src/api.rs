//! The operations the simulator serves, as a table keyed by (`Version`, `Action`), and their
//! business logic. Adding an API (another product, or another version) is one table row and one
//! handler function. CAMS lives here; STS (`AssumeRoleWithOIDC`) in [`super::sts`].
//!
//! A group is created asynchronously: `AddChatGroup` stores it `CREATING`, and it turns
//! `ACTIVE` once the creation delay has passed by the simulator's clock (see
//! [`State::settle`]). While it is `CREATING` only `ListChatGroup` sees it; every operation
//! naming it answers `InvalidStatus.GroupCreating` (see the crate documentation for why).

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use crate::group::{Group, GroupId};
use crate::params::{ApiError, Params};
use crate::protocol::{
    ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_ASSUME_ROLE_WITH_OIDC,
    ACTION_DELETE_CHAT_GROUP, ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP,
    ACTION_UPDATE_CHAT_GROUP, CAMS_API_VERSION, GROUP_STATUS_CREATING, INVITE_CODE_CHARS,
    INVITE_LINK_PREFIX, MAX_DESCRIPTION_CHARS, MAX_PAGE_SIZE, MAX_SUBJECT_CHARS, STS_API_VERSION,
    codes,
};
use crate::state::State;
use crate::sts;

/// How a request to an API must authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Signed with an AccessKey (V1 or V3), optionally with an STS token.
    AccessKey,
    /// Not signed: the request proves who it is by other means (an OIDC token). Only the
    /// `Timestamp` is checked (present, within 15 minutes of the simulator's clock).
    Anonymous,
}

/// The shape of a successful answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// CAMS: `RequestId`, `Code: "OK"`, `Message`, `Success: true`, then the handler's fields.
    CodeOk,
    /// STS: `RequestId` and the handler's fields only.
    Plain,
}

/// Business logic of one action: reads parameters, changes state, returns the fields to add to
/// the success envelope.
pub(crate) type Handler = fn(&mut State, &Params<'_>) -> Result<Map<String, Value>, ApiError>;

/// One row of the API table.
pub(crate) struct ApiSpec {
    /// Product code (all products share the simulator's one endpoint).
    pub product: &'static str,
    pub version: &'static str,
    pub action: &'static str,
    /// Authentication required.
    pub auth: Auth,
    /// Shape of a successful answer.
    pub envelope: Envelope,
    /// Business logic.
    pub handler: Handler,
}

/// Every API the simulator serves.
pub(crate) const APIS: &[ApiSpec] = &[
    ApiSpec {
        product: "cams",
        version: CAMS_API_VERSION,
        action: ACTION_ADD_CHAT_GROUP,
        auth: Auth::AccessKey,
        envelope: Envelope::CodeOk,
        handler: add_chat_group,
    },
    ApiSpec {
        product: "cams",
        version: CAMS_API_VERSION,
        action: ACTION_UPDATE_CHAT_GROUP,
        auth: Auth::AccessKey,
        envelope: Envelope::CodeOk,
        handler: update_chat_group,
    },
    ApiSpec {
        product: "cams",
        version: CAMS_API_VERSION,
        action: ACTION_LIST_CHAT_GROUP,
        auth: Auth::AccessKey,
        envelope: Envelope::CodeOk,
        handler: list_chat_group,
    },
    ApiSpec {
        product: "cams",
        version: CAMS_API_VERSION,
        action: ACTION_DELETE_CHAT_GROUP,
        auth: Auth::AccessKey,
        envelope: Envelope::CodeOk,
        handler: delete_chat_group,
    },
    ApiSpec {
        product: "cams",
        version: CAMS_API_VERSION,
        action: ACTION_ADD_CHAT_GROUP_INVITE_LINK,
        auth: Auth::AccessKey,
        envelope: Envelope::CodeOk,
        handler: add_chat_group_invite_link,
    },
    ApiSpec {
        product: "cams",
        version: CAMS_API_VERSION,
        action: ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
        auth: Auth::AccessKey,
        envelope: Envelope::CodeOk,
        handler: delete_chat_group_invite_link,
    },
    ApiSpec {
        product: "sts",
        version: STS_API_VERSION,
        action: ACTION_ASSUME_ROLE_WITH_OIDC,
        auth: Auth::Anonymous,
        envelope: Envelope::Plain,
        handler: sts::assume_role_with_oidc,
    },
];

/// The API serving `action` in `version`.
pub(crate) fn find(version: &str, action: &str) -> Option<&'static ApiSpec> {
    APIS.iter()
        .find(|api| api.version == version && api.action == action)
}

fn group_not_found(key: &GroupId) -> ApiError {
    ApiError::business(
        codes::GROUP_NOT_FOUND,
        format!(
            "The group {} does not exist for BusinessNumber {} in CustSpaceId {}.",
            key.2, key.1, key.0
        ),
    )
}

/// The group `key` names, when an operation may act on it: it exists and is not `CREATING`
/// (WhatsApp has no group to change yet).
fn usable_group<'s>(state: &'s mut State, key: &GroupId) -> Result<&'s mut Group, ApiError> {
    let group = state
        .groups
        .get_mut(key)
        .ok_or_else(|| group_not_found(key))?;
    if group.group_status == GROUP_STATUS_CREATING {
        return Err(ApiError::business(
            codes::GROUP_CREATING,
            format!(
                "The group {} is still being created: list it with ListChatGroup until its GroupStatus is no longer {GROUP_STATUS_CREATING}.",
                key.2
            ),
        ));
    }
    Ok(group)
}

/// Letters and digits, as in WhatsApp invite codes.
const INVITE_CODE_ALPHABET: &[u8] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh invite link, drawn from the id stream so that a seed gives the same links.
fn new_invite_link(rng: &mut StdRng) -> String {
    let code: String = (0..INVITE_CODE_CHARS)
        .map(|_| char::from(INVITE_CODE_ALPHABET[rng.random_range(0..INVITE_CODE_ALPHABET.len())]))
        .collect();
    format!("{INVITE_LINK_PREFIX}{code}")
}

fn add_chat_group(state: &mut State, params: &Params<'_>) -> Result<Map<String, Value>, ApiError> {
    let space = params.required("CustSpaceId")?;
    let number = params.required("BusinessNumber")?;
    params.channel()?;
    let subject = params.text("Subject", Some(MAX_SUBJECT_CHARS))?;
    let description = params.text("Description", Some(MAX_DESCRIPTION_CHARS))?;
    let group_id = loop {
        let candidate = format!(
            "SIM{:012X}",
            state.id_rng.random::<u64>() & 0xFFFF_FFFF_FFFF
        );
        let key = (space.to_owned(), number.to_owned(), candidate.clone());
        if !state.groups.contains_key(&key) {
            break candidate;
        }
    };
    let unique_code = format!("{:032x}", state.id_rng.random::<u128>());
    let mut group = Group::new(space, number, group_id.as_str());
    group.subject = subject.map(str::to_owned);
    group.description = description.map(str::to_owned);
    state.create_group(group);
    let mut out = Map::new();
    out.insert("UniqueCode".into(), Value::String(unique_code));
    Ok(out)
}

fn update_chat_group(
    state: &mut State,
    params: &Params<'_>,
) -> Result<Map<String, Value>, ApiError> {
    let key = params.group_key()?;
    params.channel()?;
    let subject = params.text("Subject", Some(MAX_SUBJECT_CHARS))?;
    let description = params.text("Description", Some(MAX_DESCRIPTION_CHARS))?;
    let picture = params.text("ProfilePictureFile", None)?;
    let group = usable_group(state, &key)?;
    if let Some(subject) = subject {
        group.subject = Some(subject.to_owned());
    }
    if let Some(description) = description {
        group.description = Some(description.to_owned());
    }
    if let Some(picture) = picture {
        group.profile_picture_file = Some(picture.to_owned());
    }
    state.touch(&key);
    Ok(affected_one())
}

fn page_invalid(detail: &str) -> ApiError {
    ApiError::business(
        codes::PAGE_INVALID,
        format!(
            "Page is invalid: {detail}. Expected JSON like {{\"Index\":1,\"Size\":20}} with Index >= 1 and Size 1..={MAX_PAGE_SIZE}."
        ),
    )
}

fn parse_page(raw: &str) -> Result<(u64, u64), ApiError> {
    let value: Value = serde_json::from_str(raw).map_err(|_| page_invalid("not JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| page_invalid("not a JSON object"))?;
    let number = |name: &str| -> Result<u64, ApiError> {
        let field = object
            .get(name)
            .ok_or_else(|| page_invalid(&format!("{name} is missing")))?;
        field
            .as_u64()
            .or_else(|| field.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| page_invalid(&format!("{name} is not a non-negative integer")))
    };
    let index = number("Index")?;
    let size = number("Size")?;
    if index < 1 {
        return Err(page_invalid("Index is 1-based"));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(page_invalid("Size is out of range"));
    }
    Ok((index, size))
}

/// One `Data.List` item; absent fields are left out rather than sent as `null`.
fn list_item(group: &Group) -> Value {
    let mut item = json!({
        "GroupId": group.group_id,
        "BusinessNumber": group.business_number,
        "Subject": group.subject,
        "Description": group.description,
        "ProfilePictureFile": group.profile_picture_file,
        "GroupStatus": group.group_status,
        "InviteLink": group.invite_link,
        "GmtModifier": group.gmt_modifier,
    });
    if let Value::Object(fields) = &mut item {
        fields.retain(|_, value| !value.is_null());
    }
    item
}

fn list_chat_group(state: &mut State, params: &Params<'_>) -> Result<Map<String, Value>, ApiError> {
    let space = params.required("CustSpaceId")?;
    let number = params.required("BusinessNumber")?;
    let page = params.required("Page")?;
    params.channel()?;
    let (index, size) = parse_page(page)?;
    let status = params.get("GroupStatus").filter(|s| !s.is_empty());
    let subject = params.get("Subject").filter(|s| !s.is_empty());
    let matching: Vec<&Group> = state
        .groups
        .values()
        .filter(|g| g.cust_space_id == space && g.business_number == number)
        .filter(|g| status.is_none_or(|s| g.group_status == s))
        .filter(|g| {
            subject.is_none_or(|s| g.subject.as_deref().is_some_and(|have| have.contains(s)))
        })
        .collect();
    let skip = usize::try_from((index - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    let take = usize::try_from(size).unwrap_or(usize::MAX);
    let list: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(take)
        .map(|g| list_item(g))
        .collect();
    let mut out = Map::new();
    out.insert(
        "Data".into(),
        json!({"Total": matching.len(), "List": list}),
    );
    Ok(out)
}

fn delete_chat_group(
    state: &mut State,
    params: &Params<'_>,
) -> Result<Map<String, Value>, ApiError> {
    let key = params.group_key()?;
    params.channel()?;
    usable_group(state, &key)?;
    state.remove_group(&key);
    Ok(affected_one())
}

/// `Result: 1`, the one row changed, as the SDKs' models of `UpdateChatGroup`, `DeleteChatGroup`
/// and `DeleteChatGroupInviteLink` answers carry it.
fn affected_one() -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("Result".into(), json!(1));
    out
}

/// A new link replaces (revokes) the one the group had, as resetting a WhatsApp invite link
/// does; the answer carries it as `InviteLink`.
fn add_chat_group_invite_link(
    state: &mut State,
    params: &Params<'_>,
) -> Result<Map<String, Value>, ApiError> {
    let key = params.group_key()?;
    params.channel()?;
    usable_group(state, &key)?;
    let link = new_invite_link(&mut state.id_rng);
    usable_group(state, &key)?.invite_link = Some(link.clone());
    state.touch(&key);
    let mut out = Map::new();
    out.insert("InviteLink".into(), Value::String(link));
    Ok(out)
}

/// Revokes the group's link. A group without one answers `OK` too: the caller wants the group
/// to have no link, and a retry after a lost answer must not fail.
fn delete_chat_group_invite_link(
    state: &mut State,
    params: &Params<'_>,
) -> Result<Map<String, Value>, ApiError> {
    let key = params.group_key()?;
    params.channel()?;
    if usable_group(state, &key)?.invite_link.take().is_some() {
        state.touch(&key);
    }
    Ok(affected_one())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use jiff::{SignedDuration, Timestamp};

    use super::*;
    use crate::config::SimConfig;
    use crate::handle::SimHandle;
    use crate::protocol::GROUP_STATUS_ACTIVE;
    use crate::state::Clock;

    fn state() -> State {
        let config = SimConfig {
            groups: vec![
                Group::new("s", "1", "G2").subject("Beta team"),
                Group::new("s", "1", "G1").subject("Alpha team"),
                Group::new("s", "1", "G3")
                    .subject("Gamma")
                    .status("SUSPENDED"),
                Group::new("other", "1", "G9"),
            ],
            ..SimConfig::default()
        };
        State::new(config, Clock::default())
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn list(state: &mut State, extra: &[(&str, &str)]) -> Result<Value, ApiError> {
        let mut p = params(&[("CustSpaceId", "s"), ("BusinessNumber", "1")]);
        p.extend(params(extra));
        list_chat_group(state, &Params(&p)).map(|m| m["Data"].clone())
    }

    #[test]
    fn list_pages_in_group_id_order_with_filters() {
        let mut s = state();
        let data = list(&mut s, &[("Page", r#"{"Index":1,"Size":2}"#)]).expect("ok");
        assert_eq!(data["Total"], 3);
        let ids: Vec<&str> = data["List"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|g| g["GroupId"].as_str())
            .collect();
        assert_eq!(ids, ["G1", "G2"]);
        let data = list(&mut s, &[("Page", r#"{"Index":2,"Size":2}"#)]).expect("ok");
        assert_eq!(data["List"][0]["GroupId"], "G3");
        let data = list(
            &mut s,
            &[("Page", r#"{"Index":1,"Size":20}"#), ("Subject", "team")],
        )
        .expect("ok");
        assert_eq!(data["Total"], 2);
        let data = list(
            &mut s,
            &[
                ("Page", r#"{"Index":1,"Size":20}"#),
                ("GroupStatus", "SUSPENDED"),
            ],
        )
        .expect("ok");
        assert_eq!(data["Total"], 1);
    }

    #[test]
    fn list_rejects_bad_pages_and_channels() {
        let mut s = state();
        for page in [
            "nope",
            r#"{"Index":0,"Size":2}"#,
            r#"{"Index":1,"Size":0}"#,
            r#"{"Index":1,"Size":101}"#,
            r#"{"Index":1}"#,
        ] {
            let err = list(&mut s, &[("Page", page)]).expect_err(page);
            assert!(
                matches!(&err, ApiError::Business { code, .. } if code == codes::PAGE_INVALID),
                "{page}: {err:?}"
            );
        }
        let err = list(&mut s, &[]).expect_err("no page");
        assert!(matches!(
            err,
            ApiError::Gateway {
                http_status: 400,
                ..
            }
        ));
        let err = list(
            &mut s,
            &[("Page", r#"{"Index":1,"Size":2}"#), ("ChannelType", "SMS")],
        )
        .expect_err("channel");
        assert!(
            matches!(&err, ApiError::Business { code, .. } if code == codes::CHANNEL_TYPE_NOT_SUPPORT)
        );
    }

    #[test]
    fn update_changes_only_sent_fields() {
        let mut s = state();
        s.groups
            .get_mut(&("s".into(), "1".into(), "G1".into()))
            .expect("seeded")
            .description = Some("Keep".into());
        let p = params(&[
            ("CustSpaceId", "s"),
            ("BusinessNumber", "1"),
            ("GroupId", "G1"),
            ("Subject", "New"),
        ]);
        let out = update_chat_group(&mut s, &Params(&p)).expect("ok");
        assert_eq!(out["Result"], 1);
        let g = &s.groups[&("s".into(), "1".into(), "G1".into())];
        assert_eq!(g.subject.as_deref(), Some("New"));
        assert_eq!(g.description.as_deref(), Some("Keep"));
        let p = params(&[
            ("CustSpaceId", "s"),
            ("BusinessNumber", "1"),
            ("GroupId", "NOPE"),
        ]);
        let err = update_chat_group(&mut s, &Params(&p)).expect_err("missing");
        assert!(matches!(&err, ApiError::Business { code, .. } if code == codes::GROUP_NOT_FOUND));
        let p = params(&[
            ("CustSpaceId", "s"),
            ("BusinessNumber", "1"),
            ("GroupId", "G1"),
            ("Subject", ""),
        ]);
        assert!(update_chat_group(&mut s, &Params(&p)).is_err());
    }

    #[test]
    fn add_then_delete() {
        let mut s = state();
        let p = params(&[
            ("CustSpaceId", "new"),
            ("BusinessNumber", "2"),
            ("Subject", "Fresh"),
        ]);
        let out = add_chat_group(&mut s, &Params(&p)).expect("ok");
        assert!(out["UniqueCode"].as_str().is_some_and(|c| c.len() == 32));
        let created: Vec<Group> = s
            .groups
            .values()
            .filter(|g| g.cust_space_id == "new")
            .cloned()
            .collect();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].subject.as_deref(), Some("Fresh"));
        let p = params(&[
            ("CustSpaceId", "new"),
            ("BusinessNumber", "2"),
            ("GroupId", created[0].group_id.as_str()),
        ]);
        delete_chat_group(&mut s, &Params(&p)).expect("deleted");
        assert!(delete_chat_group(&mut s, &Params(&p)).is_err());
    }

    #[test]
    fn table_lookup_is_by_version_and_action() {
        assert!(find(CAMS_API_VERSION, ACTION_UPDATE_CHAT_GROUP).is_some());
        assert!(find("2019-01-01", ACTION_UPDATE_CHAT_GROUP).is_none());
        assert!(find(CAMS_API_VERSION, "DescribeRegions").is_none());
        let sts = find(STS_API_VERSION, ACTION_ASSUME_ROLE_WITH_OIDC).expect("STS row");
        assert_eq!(sts.auth, Auth::Anonymous);
        assert!(find(CAMS_API_VERSION, ACTION_ASSUME_ROLE_WITH_OIDC).is_none());
    }

    fn t0() -> Timestamp {
        "2026-03-01T09:00:00Z".parse().expect("time")
    }

    /// A simulator's state behind its handle (which brings it up to date with the clock on
    /// every access, as the server's calls do), with a fixed clock at [`t0`].
    fn sim(creation_delay_ms: u64, seed: u64) -> SimHandle {
        let config = SimConfig {
            groups: vec![Group::new("s", "1", "G1").subject("Alpha team")],
            creation_delay_ms,
            seed,
            ..SimConfig::default()
        };
        SimHandle {
            state: Arc::new(Mutex::new(State::new(config, Clock::Fixed(t0())))),
        }
    }

    fn call(
        sim: &SimHandle,
        handler: Handler,
        pairs: &[(&str, &str)],
    ) -> Result<Map<String, Value>, ApiError> {
        let p = params(pairs);
        sim.with_state(|state| handler(state, &Params(&p)))
    }

    fn business_code(result: Result<Map<String, Value>, ApiError>) -> String {
        match result {
            Err(ApiError::Business { code, .. }) => code,
            other => panic!("expected a business error, got {other:?}"),
        }
    }

    /// The listed item of `group_id` in space `s`, number `1`.
    fn listed(sim: &SimHandle, group_id: &str) -> Option<Value> {
        let out = call(
            sim,
            list_chat_group,
            &[
                ("CustSpaceId", "s"),
                ("BusinessNumber", "1"),
                ("Page", r#"{"Index":1,"Size":100}"#),
            ],
        )
        .expect("lists");
        out["Data"]["List"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["GroupId"] == group_id)
            .cloned()
    }

    /// Creates a group with `AddChatGroup` and returns its generated `GroupId`.
    fn add(sim: &SimHandle, subject: &str) -> String {
        call(
            sim,
            add_chat_group,
            &[
                ("CustSpaceId", "s"),
                ("BusinessNumber", "1"),
                ("Subject", subject),
            ],
        )
        .expect("adds");
        sim.groups()
            .into_iter()
            .find(|g| g.subject.as_deref() == Some(subject))
            .map(|g| g.group_id)
            .expect("the new group is stored")
    }

    fn key_params(group_id: &str) -> [(&str, &str); 3] {
        [
            ("CustSpaceId", "s"),
            ("BusinessNumber", "1"),
            ("GroupId", group_id),
        ]
    }

    #[test]
    fn a_new_group_is_creating_until_the_delay_has_passed_by_the_clock() {
        let sim = sim(60_000, 0);
        let id = add(&sim, "Fresh");
        let group = sim.group("s", "1", &id).expect("stored");
        assert_eq!(group.group_status, GROUP_STATUS_CREATING);
        assert_eq!(group.gmt_modifier, Some(t0().as_millisecond()));
        assert_eq!(
            listed(&sim, &id).map(|g| g["GroupStatus"].clone()),
            Some(json!(GROUP_STATUS_CREATING))
        );

        // Only listing sees a group being created.
        let keys = key_params(&id);
        let mut update = keys.to_vec();
        update.push(("Subject", "Renamed"));
        for (handler, pairs) in [
            (update_chat_group as Handler, update.as_slice()),
            (add_chat_group_invite_link, keys.as_slice()),
            (delete_chat_group_invite_link, keys.as_slice()),
            (delete_chat_group, keys.as_slice()),
        ] {
            assert_eq!(
                business_code(call(&sim, handler, pairs)),
                codes::GROUP_CREATING
            );
        }
        let group = sim.group("s", "1", &id).expect("still stored");
        assert_eq!(group.subject.as_deref(), Some("Fresh"));
        assert_eq!(group.invite_link, None);

        sim.set_time(t0() + SignedDuration::from_millis(59_999));
        assert_eq!(
            listed(&sim, &id).map(|g| g["GroupStatus"].clone()),
            Some(json!(GROUP_STATUS_CREATING))
        );
        let ready = t0() + SignedDuration::from_secs(60);
        sim.set_time(ready);
        let group = sim.group("s", "1", &id).expect("stored");
        assert_eq!(group.group_status, GROUP_STATUS_ACTIVE);
        assert_eq!(group.gmt_modifier, Some(ready.as_millisecond()));
        assert_eq!(
            listed(&sim, &id).map(|g| g["GroupStatus"].clone()),
            Some(json!(GROUP_STATUS_ACTIVE))
        );

        // A finished creation stays finished when the clock goes back.
        sim.set_time(t0());
        assert_eq!(
            sim.group("s", "1", &id).map(|g| g.group_status),
            Some(GROUP_STATUS_ACTIVE.to_owned())
        );
        call(&sim, update_chat_group, &update).expect("an ACTIVE group can be changed");
        assert_eq!(
            sim.group("s", "1", &id).and_then(|g| g.subject),
            Some("Renamed".to_owned())
        );
    }

    #[test]
    fn a_zero_creation_delay_creates_active_groups_at_once() {
        let sim = sim(0, 0);
        let id = add(&sim, "Fresh");
        assert_eq!(
            sim.group("s", "1", &id).map(|g| g.group_status),
            Some(GROUP_STATUS_ACTIVE.to_owned())
        );
        call(&sim, add_chat_group_invite_link, &key_params(&id)).expect("usable at once");
    }

    #[test]
    fn the_creation_delay_can_change_at_run_time() {
        let sim = sim(0, 0);
        sim.set_creation_delay(std::time::Duration::from_secs(5));
        let id = add(&sim, "Later");
        assert_eq!(
            sim.group("s", "1", &id).map(|g| g.group_status),
            Some(GROUP_STATUS_CREATING.to_owned())
        );
        sim.set_creation_delay(std::time::Duration::ZERO);
        assert_eq!(
            sim.group("s", "1", &id).map(|g| g.group_status),
            Some(GROUP_STATUS_CREATING.to_owned()),
            "a creation keeps the delay it started with"
        );
        sim.set_time(t0() + SignedDuration::from_secs(5));
        assert_eq!(
            sim.group("s", "1", &id).map(|g| g.group_status),
            Some(GROUP_STATUS_ACTIVE.to_owned())
        );
    }

    #[test]
    fn an_outside_status_change_during_creation_is_kept() {
        let sim = sim(1_000, 0);
        let id = add(&sim, "Fresh");
        assert!(sim.set_group_status("s", "1", &id, "SUSPENDED"));
        sim.set_time(t0() + SignedDuration::from_secs(2));
        assert_eq!(
            sim.group("s", "1", &id).map(|g| g.group_status),
            Some("SUSPENDED".to_owned())
        );
    }

    #[test]
    fn invite_links_are_added_replaced_listed_and_deleted() {
        let sim = sim(0, 7);
        let keys = key_params("G1");
        let first = call(&sim, add_chat_group_invite_link, &keys).expect("adds");
        let link = first["InviteLink"].as_str().expect("InviteLink").to_owned();
        let code = link
            .strip_prefix(INVITE_LINK_PREFIX)
            .expect("a WhatsApp invite URL");
        assert_eq!(code.len(), INVITE_CODE_CHARS);
        assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
        assert_eq!(
            listed(&sim, "G1").map(|g| g["InviteLink"].clone()),
            Some(json!(link))
        );

        let again = call(&sim, add_chat_group_invite_link, &keys).expect("adds again");
        let replaced = again["InviteLink"].as_str().expect("InviteLink").to_owned();
        assert_ne!(replaced, link, "a new link revokes the old one");
        assert_eq!(
            sim.group("s", "1", "G1").and_then(|g| g.invite_link),
            Some(replaced.clone())
        );

        // The same seed gives the same links.
        let twin = sim_with_link(7);
        assert_eq!(twin, link);

        let deleted = call(&sim, delete_chat_group_invite_link, &keys).expect("deletes");
        assert_eq!(deleted["Result"], 1);
        let item = listed(&sim, "G1").expect("still listed");
        assert!(item.get("InviteLink").is_none(), "{item}");
        assert_eq!(sim.group("s", "1", "G1").and_then(|g| g.invite_link), None);
        call(&sim, delete_chat_group_invite_link, &keys)
            .expect("deleting the link of a group without one is OK");

        for handler in [
            add_chat_group_invite_link as Handler,
            delete_chat_group_invite_link,
        ] {
            assert_eq!(
                business_code(call(&sim, handler, &key_params("NOPE"))),
                codes::GROUP_NOT_FOUND
            );
        }
        let err = call(
            &sim,
            add_chat_group_invite_link,
            &[("CustSpaceId", "s"), ("GroupId", "G1")],
        )
        .expect_err("BusinessNumber is required");
        assert!(
            matches!(
                err,
                ApiError::Gateway {
                    http_status: 400,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut sms = keys.to_vec();
        sms.push(("ChannelType", "SMS"));
        assert_eq!(
            business_code(call(&sim, delete_chat_group_invite_link, &sms)),
            codes::CHANNEL_TYPE_NOT_SUPPORT
        );
    }

    /// The first invite link a fresh simulator seeded with `seed` gives `G1`.
    fn sim_with_link(seed: u64) -> String {
        let sim = sim(0, seed);
        call(&sim, add_chat_group_invite_link, &key_params("G1")).expect("adds")["InviteLink"]
            .as_str()
            .expect("InviteLink")
            .to_owned()
    }

    #[test]
    fn a_deleted_group_is_gone_and_a_missing_one_is_reported() {
        let sim = sim(0, 0);
        let out = call(&sim, delete_chat_group, &key_params("G1")).expect("deletes");
        assert_eq!(out["Result"], 1);
        assert!(sim.group("s", "1", "G1").is_none());
        assert!(listed(&sim, "G1").is_none());
        assert_eq!(
            business_code(call(&sim, delete_chat_group, &key_params("G1"))),
            codes::GROUP_NOT_FOUND
        );
        assert_eq!(
            business_code(call(&sim, update_chat_group, &key_params("G1"))),
            codes::GROUP_NOT_FOUND
        );
    }

    #[test]
    fn the_new_actions_are_in_the_table() {
        for action in [
            ACTION_ADD_CHAT_GROUP_INVITE_LINK,
            ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
        ] {
            let api = find(CAMS_API_VERSION, action).expect("a row");
            assert_eq!(api.auth, Auth::AccessKey);
            assert_eq!(api.envelope, Envelope::CodeOk);
        }
    }
}
