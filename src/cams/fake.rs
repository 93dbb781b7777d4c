//! `FakeCams`: an in-memory [`CamsApi`] for unit tests of the reconcile engine and the
//! benchmarks. It is built for the unit tests and with the `testing` feature (which the
//! benchmarks and integration tests enable), never into the release binary.
//!
//! It keeps groups per (custSpaceId, businessNumber), applies `UpdateChatGroup` to them,
//! answers `ListChatGroup` with paging, counts calls per action, records every update request,
//! and fails calls on demand (a queue of scripted errors per action). It checks nothing about
//! signatures: the CAMS simulator (the `cams-sim` crate) is the faithful stand-in; this is the fast one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
    ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP,
    AddChatGroupRequest, AddChatGroupResponse, CODE_GROUP_NOT_FOUND, CODE_OK, CamsApi, CamsError,
    ChatGroupItem, Credentials, DeleteResponse, Endpoint, GroupKey, GroupRequest,
    InviteLinkResponse, ListChatGroupRequest, ListChatGroupResponse, ResponseMeta,
    UpdateChatGroupRequest, UpdateChatGroupResponse,
};

#[derive(Default)]
struct State {
    /// (custSpaceId, businessNumber) -> GroupId -> item.
    groups: BTreeMap<(String, String), BTreeMap<String, ChatGroupItem>>,
    calls: HashMap<&'static str, usize>,
    failures: HashMap<&'static str, VecDeque<CamsError>>,
    always: HashMap<&'static str, CamsError>,
    updates: Vec<UpdateChatGroupRequest>,
    access_key_ids: Vec<String>,
    next_request: u64,
    /// `GroupStatus` of the groups `AddChatGroup` creates.
    created_status: Option<String>,
    /// Groups `AddChatGroup` created, the serial of their IDs.
    created: u64,
}

/// In-memory CAMS. Cheap to create; share it by reference.
#[derive(Default)]
pub struct FakeCams {
    state: Mutex<State>,
    list_gate: Option<Arc<tokio::sync::Semaphore>>,
    max_page_size: Option<u32>,
}

impl FakeCams {
    /// An empty fake.
    pub fn new() -> Self {
        FakeCams::default()
    }

    /// Returns at most `size` items per `ListChatGroup` page, whatever was asked for (as a
    /// service with a smaller page limit would).
    pub fn with_max_page_size(mut self, size: u32) -> Self {
        self.max_page_size = Some(size.max(1));
        self
    }

    /// Makes every `ListChatGroup` page wait for (and consume) a permit of `gate`, so a test
    /// can hold listings in flight while concurrent callers pile up.
    pub fn with_list_gate(mut self, gate: Arc<tokio::sync::Semaphore>) -> Self {
        self.list_gate = Some(gate);
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds or replaces the group `key` with status `ACTIVE` and the given subject.
    pub fn add_group(&self, key: &GroupKey, subject: Option<&str>) {
        self.put_group(
            key,
            ChatGroupItem {
                group_id: Some(key.group_id.clone()),
                business_number: Some(key.business_number.clone()),
                subject: subject.map(str::to_owned),
                group_status: Some("ACTIVE".to_owned()),
                ..ChatGroupItem::default()
            },
        );
    }

    /// Adds or replaces the group `key` with `item` (its `group_id` is set from `key`).
    pub fn put_group(&self, key: &GroupKey, mut item: ChatGroupItem) {
        item.group_id = Some(key.group_id.clone());
        self.state()
            .groups
            .entry((key.cust_space_id.clone(), key.business_number.clone()))
            .or_default()
            .insert(key.group_id.clone(), item);
    }

    /// Changes a group as someone editing it in WhatsApp would (no call is counted).
    pub fn edit_group(&self, key: &GroupKey, edit: impl FnOnce(&mut ChatGroupItem)) {
        let mut state = self.state();
        if let Some(item) = state
            .groups
            .get_mut(&(key.cust_space_id.clone(), key.business_number.clone()))
            .and_then(|groups| groups.get_mut(&key.group_id))
        {
            edit(item);
        }
    }

    /// The group `key`, as stored.
    pub fn group(&self, key: &GroupKey) -> Option<ChatGroupItem> {
        self.state()
            .groups
            .get(&(key.cust_space_id.clone(), key.business_number.clone()))
            .and_then(|groups| groups.get(&key.group_id))
            .cloned()
    }

    /// Makes `AddChatGroup` create groups in `status` (for example `CREATING`) instead of
    /// `ACTIVE`; [`FakeCams::edit_group`] moves them on.
    pub fn create_groups_as(&self, status: &str) {
        self.state().created_status = Some(status.to_owned());
    }

    /// Every group of `cust_space_id` and `business_number`, by ID.
    pub fn groups(&self, cust_space_id: &str, business_number: &str) -> Vec<ChatGroupItem> {
        self.state()
            .groups
            .get(&(cust_space_id.to_owned(), business_number.to_owned()))
            .map(|groups| groups.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Fails the next call of `action` with `err` (queued: several calls fail in order).
    pub fn fail_next(&self, action: &'static str, err: CamsError) {
        self.state()
            .failures
            .entry(action)
            .or_default()
            .push_back(err);
    }

    /// Fails every call of `action` with `err` until [`FakeCams::heal`].
    pub fn fail_always(&self, action: &'static str, err: CamsError) {
        self.state().always.insert(action, err);
    }

    /// Stops failing calls.
    pub fn heal(&self) {
        let mut state = self.state();
        state.always.clear();
        state.failures.clear();
    }

    /// How many times `action` was called (failed calls included).
    pub fn calls(&self, action: &str) -> usize {
        self.state().calls.get(action).copied().unwrap_or(0)
    }

    /// Every `UpdateChatGroup` request received, in order (failed ones included).
    pub fn updates(&self) -> Vec<UpdateChatGroupRequest> {
        self.state().updates.clone()
    }

    /// The AccessKey IDs of every call, in order.
    pub fn access_key_ids(&self) -> Vec<String> {
        self.state().access_key_ids.clone()
    }

    /// Counts the call and returns its request ID, or the scripted failure.
    fn begin(
        &self,
        action: &'static str,
        credentials: &Credentials,
    ) -> Result<String, Box<CamsError>> {
        let mut state = self.state();
        *state.calls.entry(action).or_default() += 1;
        state.access_key_ids.push(credentials.access_key_id.clone());
        if let Some(err) = state.failures.get_mut(action).and_then(VecDeque::pop_front) {
            return Err(Box::new(err));
        }
        if let Some(err) = state.always.get(action) {
            return Err(Box::new(err.clone()));
        }
        state.next_request += 1;
        Ok(format!("FAKE-{:08}", state.next_request))
    }

    /// The stored group `key`, or CAMS's answer for a missing group.
    fn with_group<T>(
        &self,
        action: &'static str,
        key: &GroupKey,
        request_id: String,
        change: impl FnOnce(&mut State, &GroupKey) -> T,
    ) -> Result<T, Box<CamsError>> {
        let mut state = self.state();
        let exists = state
            .groups
            .get(&(key.cust_space_id.clone(), key.business_number.clone()))
            .is_some_and(|groups| groups.contains_key(&key.group_id));
        if !exists {
            return Err(Box::new(CamsError::Business {
                action,
                http_status: 200,
                code: CODE_GROUP_NOT_FOUND.to_owned(),
                message: Some(format!("group {} does not exist", key.group_id)),
                request_id: Some(request_id),
                success: Some(false),
                access_denied_detail: None,
            }));
        }
        Ok(change(&mut state, key))
    }

    /// Counts a call of `action` on the group `key` and applies `change`, or answers as CAMS
    /// does for a missing group. Returns the call's request ID.
    fn on_group(
        &self,
        action: &'static str,
        credentials: &Credentials,
        key: &GroupKey,
        change: impl FnOnce(&mut State, &GroupKey),
    ) -> Result<String, Box<CamsError>> {
        let request_id = self.begin(action, credentials)?;
        self.with_group(action, key, request_id.clone(), change)?;
        Ok(request_id)
    }

    fn meta(request_id: String) -> ResponseMeta {
        ResponseMeta {
            http_status: 200,
            request_id: Some(request_id),
            code: CODE_OK.to_owned(),
            message: None,
            success: Some(true),
            access_denied_detail: None,
        }
    }
}

impl CamsApi for FakeCams {
    async fn update_chat_group(
        &self,
        _endpoint: &Endpoint,
        credentials: &Credentials,
        request: &UpdateChatGroupRequest,
    ) -> Result<UpdateChatGroupResponse, CamsError> {
        self.state().updates.push(request.clone());
        let request_id = self
            .begin(ACTION_UPDATE_CHAT_GROUP, credentials)
            .map_err(|err| *err)?;
        self.with_group(
            ACTION_UPDATE_CHAT_GROUP,
            &request.key,
            request_id.clone(),
            |state, key| {
                let groups = state
                    .groups
                    .get_mut(&(key.cust_space_id.clone(), key.business_number.clone()));
                if let Some(item) = groups.and_then(|groups| groups.get_mut(&key.group_id)) {
                    if let Some(subject) = &request.subject {
                        item.subject = Some(subject.clone());
                    }
                    if let Some(description) = &request.description {
                        item.description = Some(description.clone());
                    }
                    if let Some(picture) = &request.profile_picture_file {
                        item.profile_picture_file = Some(picture.clone());
                    }
                }
            },
        )
        .map_err(|err| *err)?;
        Ok(UpdateChatGroupResponse {
            meta: Self::meta(request_id),
            result: Some(1),
        })
    }

    async fn list_chat_group(
        &self,
        _endpoint: &Endpoint,
        credentials: &Credentials,
        request: &ListChatGroupRequest,
    ) -> Result<ListChatGroupResponse, CamsError> {
        if let Some(gate) = &self.list_gate
            && let Ok(permit) = gate.acquire().await
        {
            permit.forget();
        }
        let request_id = self
            .begin(ACTION_LIST_CHAT_GROUP, credentials)
            .map_err(|err| *err)?;
        let state = self.state();
        let all: Vec<ChatGroupItem> = state
            .groups
            .get(&(
                request.cust_space_id.clone(),
                request.business_number.clone(),
            ))
            .map(|groups| groups.values().cloned().collect())
            .unwrap_or_default();
        let asked = request.page_size.max(1) as usize;
        let size = self
            .max_page_size
            .map_or(asked, |max| asked.min(max as usize));
        let skip = (request.page_index.max(1) as usize - 1) * size;
        Ok(ListChatGroupResponse {
            meta: Self::meta(request_id),
            total: Some(all.len() as u64),
            groups: all.into_iter().skip(skip).take(size).collect(),
        })
    }

    async fn add_chat_group(
        &self,
        _endpoint: &Endpoint,
        credentials: &Credentials,
        request: &AddChatGroupRequest,
    ) -> Result<AddChatGroupResponse, CamsError> {
        let request_id = self
            .begin(ACTION_ADD_CHAT_GROUP, credentials)
            .map_err(|err| *err)?;
        let mut state = self.state();
        // Counted under the same lock as the insertion, so concurrent creations never share
        // an ID.
        state.created += 1;
        let serial = state.created;
        let group_id = format!("FAKEGROUP{serial:06}");
        let item = ChatGroupItem {
            group_id: Some(group_id.clone()),
            business_number: Some(request.business_number.clone()),
            subject: request.subject.clone(),
            description: request.description.clone(),
            group_status: Some(
                state
                    .created_status
                    .clone()
                    .unwrap_or_else(|| "ACTIVE".to_owned()),
            ),
            ..ChatGroupItem::default()
        };
        state
            .groups
            .entry((
                request.cust_space_id.clone(),
                request.business_number.clone(),
            ))
            .or_default()
            .insert(group_id, item);
        Ok(AddChatGroupResponse {
            meta: Self::meta(request_id),
            unique_code: Some(format!("fake-unique-{serial:06}")),
        })
    }

    async fn delete_chat_group(
        &self,
        _endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<DeleteResponse, CamsError> {
        let request_id = self
            .on_group(
                ACTION_DELETE_CHAT_GROUP,
                credentials,
                &request.key,
                |state, key| {
                    if let Some(groups) = state
                        .groups
                        .get_mut(&(key.cust_space_id.clone(), key.business_number.clone()))
                    {
                        groups.remove(&key.group_id);
                    }
                },
            )
            .map_err(|err| *err)?;
        Ok(DeleteResponse {
            meta: Self::meta(request_id),
            result: Some(1),
        })
    }

    async fn add_chat_group_invite_link(
        &self,
        _endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<InviteLinkResponse, CamsError> {
        let request_id = self
            .begin(ACTION_ADD_CHAT_GROUP_INVITE_LINK, credentials)
            .map_err(|err| *err)?;
        let link = format!("https://chat.whatsapp.com/{request_id}");
        self.with_group(
            ACTION_ADD_CHAT_GROUP_INVITE_LINK,
            &request.key,
            request_id.clone(),
            |state, key| set_invite_link(state, key, Some(link.clone())),
        )
        .map_err(|err| *err)?;
        Ok(InviteLinkResponse {
            meta: Self::meta(request_id),
            invite_link: Some(link),
        })
    }

    async fn delete_chat_group_invite_link(
        &self,
        _endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<DeleteResponse, CamsError> {
        let request_id = self
            .on_group(
                ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
                credentials,
                &request.key,
                |state, key| set_invite_link(state, key, None),
            )
            .map_err(|err| *err)?;
        Ok(DeleteResponse {
            meta: Self::meta(request_id),
            result: Some(1),
        })
    }
}

fn set_invite_link(state: &mut State, key: &GroupKey, link: Option<String>) {
    if let Some(item) = state
        .groups
        .get_mut(&(key.cust_space_id.clone(), key.business_number.clone()))
        .and_then(|groups| groups.get_mut(&key.group_id))
    {
        item.invite_link = link;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cams::test_errors::{business, gateway};
    use crate::cams::{ErrorClass, ErrorKind, SecretString};
    use crate::crd::Reason;

    const SPACE: &str = "space";
    const NUMBER: &str = "8613800001234";

    fn endpoint() -> Endpoint {
        Endpoint::from_url("http://fake/")
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "LTAIfake".into(),
            access_key_secret: SecretString::new("fake-secret"),
            security_token: None,
        }
    }

    fn add_request(subject: &str) -> AddChatGroupRequest {
        AddChatGroupRequest {
            cust_space_id: SPACE.into(),
            business_number: NUMBER.into(),
            channel_type: Some("WHATSAPP".into()),
            subject: Some(subject.into()),
            description: Some(format!("About {subject}")),
        }
    }

    fn key(group_id: &str) -> GroupKey {
        GroupKey {
            cust_space_id: SPACE.into(),
            business_number: NUMBER.into(),
            group_id: group_id.into(),
        }
    }

    fn group_request(group_id: &str) -> GroupRequest {
        GroupRequest {
            key: key(group_id),
            channel_type: Some("WHATSAPP".into()),
        }
    }

    /// Creates a group and returns its ID.
    async fn add(cams: &FakeCams, subject: &str) -> String {
        cams.add_chat_group(&endpoint(), &creds(), &add_request(subject))
            .await
            .expect("add");
        cams.groups(SPACE, NUMBER)
            .into_iter()
            .find(|g| g.subject.as_deref() == Some(subject))
            .and_then(|g| g.group_id)
            .expect("created")
    }

    fn assert_group_not_found(err: &CamsError, action: &str) {
        assert!(
            matches!(err, CamsError::Business { code, http_status: 200, request_id: Some(_), .. } if code == CODE_GROUP_NOT_FOUND),
            "{err:?}"
        );
        assert_eq!(err.action(), action);
        assert_eq!(err.kind(), ErrorKind::GroupNotFound);
        assert_eq!(err.reason(), Reason::GroupNotFound);
        assert_eq!(err.class(), ErrorClass::Terminal);
    }

    #[tokio::test]
    async fn add_creates_an_active_group_with_what_was_sent() {
        let cams = FakeCams::new();
        let added = cams
            .add_chat_group(&endpoint(), &creds(), &add_request("Sales"))
            .await
            .expect("add");
        assert_eq!(added.meta.code, CODE_OK);
        let unique = added.unique_code.expect("a unique code");
        let groups = cams.groups(SPACE, NUMBER);
        assert_eq!(groups.len(), 1);
        let group = &groups[0];
        let id = group.group_id.clone().expect("an ID");
        assert!(id.starts_with("FAKEGROUP"), "{id}");
        assert_ne!(unique, id, "the unique code is not the group's ID");
        assert_eq!(group.group_status.as_deref(), Some("ACTIVE"));
        assert_eq!(group.subject.as_deref(), Some("Sales"));
        assert_eq!(group.description.as_deref(), Some("About Sales"));
        assert_eq!(group.business_number.as_deref(), Some(NUMBER));
        assert_eq!(cams.group(&key(&id)).as_ref(), Some(group));
        assert!(cams.groups(SPACE, "other number").is_empty());

        let second = add(&cams, "Support").await;
        assert_ne!(second, id, "every group gets its own ID");
        assert_eq!(cams.groups(SPACE, NUMBER).len(), 2);
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 2);
        assert_eq!(cams.access_key_ids(), ["LTAIfake", "LTAIfake"]);
    }

    #[tokio::test]
    async fn groups_are_created_in_the_status_asked_for_and_listed_so() {
        let cams = FakeCams::new();
        cams.create_groups_as("CREATING");
        let id = add(&cams, "Slow").await;
        assert_eq!(
            cams.group(&key(&id)).and_then(|g| g.group_status),
            Some("CREATING".to_owned())
        );
        let page = cams
            .list_chat_group(
                &endpoint(),
                &creds(),
                &ListChatGroupRequest {
                    cust_space_id: SPACE.into(),
                    business_number: NUMBER.into(),
                    channel_type: None,
                    group_status: None,
                    subject: None,
                    page_index: 1,
                    page_size: 20,
                },
            )
            .await
            .expect("list");
        assert_eq!(page.groups.len(), 1);
        assert_eq!(page.groups[0].group_status.as_deref(), Some("CREATING"));
        cams.edit_group(&key(&id), |g| g.group_status = Some("ACTIVE".into()));
        assert_eq!(
            cams.group(&key(&id)).and_then(|g| g.group_status),
            Some("ACTIVE".to_owned())
        );
    }

    #[tokio::test]
    async fn delete_removes_the_group_and_a_missing_one_is_not_found() {
        let cams = FakeCams::new();
        let id = add(&cams, "Doomed").await;
        let other = add(&cams, "Kept").await;
        let deleted = cams
            .delete_chat_group(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect("delete");
        assert_eq!(
            (deleted.meta.code.as_str(), deleted.result),
            (CODE_OK, Some(1))
        );
        assert!(cams.group(&key(&id)).is_none());
        assert!(cams.group(&key(&other)).is_some());

        let err = cams
            .delete_chat_group(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect_err("gone");
        assert_group_not_found(&err, ACTION_DELETE_CHAT_GROUP);
        assert_eq!(cams.calls(ACTION_DELETE_CHAT_GROUP), 2);
    }

    #[tokio::test]
    async fn invite_links_are_added_and_removed() {
        let cams = FakeCams::new();
        let id = add(&cams, "Linked").await;
        let added = cams
            .add_chat_group_invite_link(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect("add link");
        let link = added.invite_link.expect("a link");
        assert!(link.starts_with("https://chat.whatsapp.com/"), "{link}");
        assert_eq!(
            cams.group(&key(&id)).and_then(|g| g.invite_link),
            Some(link.clone())
        );
        let again = cams
            .add_chat_group_invite_link(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect("add another link")
            .invite_link
            .expect("a link");
        assert_ne!(again, link, "a new link replaces the old one");
        assert_eq!(
            cams.group(&key(&id)).and_then(|g| g.invite_link),
            Some(again)
        );

        let removed = cams
            .delete_chat_group_invite_link(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect("delete link");
        assert_eq!(removed.result, Some(1));
        assert_eq!(cams.group(&key(&id)).and_then(|g| g.invite_link), None);

        for err in [
            cams.add_chat_group_invite_link(&endpoint(), &creds(), &group_request("NOPE"))
                .await
                .map(drop)
                .expect_err("missing"),
            cams.delete_chat_group_invite_link(&endpoint(), &creds(), &group_request("NOPE"))
                .await
                .map(drop)
                .expect_err("missing"),
        ] {
            assert_group_not_found(
                &err,
                match err.action() {
                    a if a == ACTION_ADD_CHAT_GROUP_INVITE_LINK => a,
                    _ => ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
                },
            );
        }
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 3);
        assert_eq!(cams.calls(ACTION_DELETE_CHAT_GROUP_INVITE_LINK), 2);
    }

    /// `fail_next` and `fail_always` apply to the new actions: the scripted error is answered,
    /// in order, the call is counted and changes nothing, and the next call goes through.
    #[tokio::test]
    async fn scripted_failures_apply_to_the_new_actions() {
        let cams = FakeCams::new();
        let id = add(&cams, "Target").await;

        cams.fail_next(
            ACTION_ADD_CHAT_GROUP,
            gateway(503, Some("ServiceUnavailable")),
        );
        cams.fail_next(ACTION_ADD_CHAT_GROUP, business("Forbidden.NotAllowlisted"));
        let err = cams
            .add_chat_group(&endpoint(), &creds(), &add_request("Failed"))
            .await
            .expect_err("scripted");
        assert_eq!(err.code(), Some("ServiceUnavailable"));
        let err = cams
            .add_chat_group(&endpoint(), &creds(), &add_request("Failed"))
            .await
            .expect_err("scripted");
        assert_eq!(err.code(), Some("Forbidden.NotAllowlisted"));
        assert_eq!(cams.groups(SPACE, NUMBER).len(), 1, "no group was created");
        add(&cams, "Then").await;

        cams.fail_next(
            ACTION_DELETE_CHAT_GROUP,
            gateway(400, Some("Throttling.User")),
        );
        let err = cams
            .delete_chat_group(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect_err("scripted");
        assert_eq!(err.kind(), ErrorKind::Throttled);
        assert!(cams.group(&key(&id)).is_some(), "the group was kept");

        cams.fail_next(
            ACTION_ADD_CHAT_GROUP_INVITE_LINK,
            gateway(403, Some("Forbidden.RAM")),
        );
        let err = cams
            .add_chat_group_invite_link(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect_err("scripted");
        assert_eq!(err.kind(), ErrorKind::AccessDenied);
        assert_eq!(cams.group(&key(&id)).and_then(|g| g.invite_link), None);
        cams.add_chat_group_invite_link(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect("the script is used up");

        cams.fail_always(
            ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
            gateway(500, Some("InternalError")),
        );
        for _ in 0..2 {
            let err = cams
                .delete_chat_group_invite_link(&endpoint(), &creds(), &group_request(&id))
                .await
                .expect_err("always");
            assert_eq!(err.code(), Some("InternalError"));
        }
        assert!(cams.group(&key(&id)).and_then(|g| g.invite_link).is_some());
        cams.heal();
        cams.delete_chat_group_invite_link(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect("healed");
        assert_eq!(cams.group(&key(&id)).and_then(|g| g.invite_link), None);
        cams.delete_chat_group(&endpoint(), &creds(), &group_request(&id))
            .await
            .expect("the script is used up");
        assert!(cams.group(&key(&id)).is_none());

        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 4);
        assert_eq!(cams.calls(ACTION_DELETE_CHAT_GROUP), 2);
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 2);
        assert_eq!(cams.calls(ACTION_DELETE_CHAT_GROUP_INVITE_LINK), 3);
    }

    /// Concurrent creations each get a group of their own.
    #[test]
    fn concurrent_adds_never_share_a_group_id() {
        let cams = Arc::new(FakeCams::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cams = cams.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime");
                    runtime.block_on(async {
                        for i in 0..500 {
                            cams.add_chat_group(
                                &endpoint(),
                                &creds(),
                                &add_request(&format!("T{t}-{i}")),
                            )
                            .await
                            .expect("add");
                        }
                    });
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        assert_eq!(cams.groups(SPACE, NUMBER).len(), 2000);
    }
}
