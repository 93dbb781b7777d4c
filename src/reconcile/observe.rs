//! Step 3 of the pipeline: read the remote group (thin I/O).
//!
//! CAMS has no "get one group" call: a group is found by walking `ListChatGroup` pages for its
//! space and business number and filtering by `GroupId`. Doing that per object would cost
//! 1,000 listings for 1,000 groups of one space, so [`SharedLister`] shares one walk per
//! (endpoint, AccessKey ID, custSpaceId, businessNumber, channel) between every caller:
//! - callers that arrive while a walk for the same space is in flight wait for it and use its
//!   result (single flight), success or failure;
//! - a finished walk's result is reused by callers that arrive within `window` of the walk's
//!   end (5 s in the controller; 0 for one-shot use), measured on the callers' clock (the
//!   `now` passed in, and the lister's clock for the walk's end, so tests with an injected
//!   clock see the same behaviour). Measured from the end, not the start: a walk of a large
//!   space under a busy request budget (50 pages at 10 a second) can take longer than the
//!   window, and would otherwise be stale for everyone who did not wait for it — a cold start
//!   of 50,000 objects then walked each space once for every few objects;
//! - a read never uses a walk that started before the caller's own last CAMS write
//!   ([`ReadAt::listed_after`]), so the read that confirms a write sees it if CAMS applied it,
//!   however long the walk that was in flight took.
//!
//! Unlike [`crate::cams::client::find_group`], which stops at the first match, a walk reads
//! the whole space so that every object of the space can be answered from it. Both page with
//! [`crate::cams::pager`], so both stop at its one page limit; a group missing from a listing
//! cut there is [`Lookup::Truncated`], never reported as missing.
//!
//! A walk's result stays in memory for the window, and at 10,000 groups a space it is one of
//! the operator's larger owners of memory: each group is kept as one [`ListedGroup`] (the
//! fields reconciling reads, in one allocation) in a slice sorted by `GroupId`, instead of
//! the whole listed item in a hash table.
//!

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::ops::ControlFlow;

use crate::cams::pager::{self, Lookup, WalkEnd};
use crate::cams::{
    CamsApi, CamsError, ChatGroupItem, Credentials, Endpoint, GroupKey, ListChatGroupRequest,
};
use crate::crd::{ChannelType, ObservedGroup, Time};

/// Page size of `ListChatGroup` walks.
pub const LIST_PAGE_SIZE: u32 = 50;
/// Reuse window of the controller's shared listings.
pub const DEFAULT_LIST_WINDOW: Duration = Duration::from_secs(5);

/// Identifies one listing: same endpoint, same identity, same space, same number, same channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SpaceKey {
    endpoint: String,
    access_key_id: String,
    cust_space_id: String,
    business_number: String,
    channel: &'static str,
}

/// A finished walk: every group it listed, sorted by `GroupId`, and whether the listing was
/// cut at the page limit; or the error that ended it.
type WalkResult = Result<(Arc<[ListedGroup]>, WalkEnd), CamsError>;

/// One listed group as a walk keeps it: its `GroupId`, `Subject`, `Description`,
/// `ProfilePictureFile`, `InviteLink` and `GroupStatus` in one text, with where each ends. An
/// empty field is CAMS's "not set", as it is everywhere in the reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    text: Box<str>,
    /// Where the group id, subject, description, picture and invite link end; the status runs
    /// to the end.
    ends: [u32; 5],
}

impl ListedGroup {
    /// The fields of `item` reconciling reads; `None` for an item without a `GroupId` (or one
    /// longer than 4 GiB, which the response size limit already rules out).
    pub fn new(item: &ChatGroupItem) -> Option<Self> {
        let fields = [
            item.group_id.as_deref().filter(|id| !id.is_empty())?,
            item.subject.as_deref().unwrap_or_default(),
            item.description.as_deref().unwrap_or_default(),
            item.profile_picture_file.as_deref().unwrap_or_default(),
            item.invite_link.as_deref().unwrap_or_default(),
            item.group_status.as_deref().unwrap_or_default(),
        ];
        let mut text = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0; 5];
        for (index, field) in fields.iter().enumerate() {
            text.push_str(field);
            if let Some(end) = ends.get_mut(index) {
                *end = u32::try_from(text.len()).ok()?;
            }
        }
        u32::try_from(text.len()).ok()?;
        Some(ListedGroup {
            text: text.into_boxed_str(),
            ends,
        })
    }

    fn field(&self, index: usize) -> &str {
        let start = index
            .checked_sub(1)
            .and_then(|i| self.ends.get(i))
            .map_or(0, |&end| end as usize);
        let end = self
            .ends
            .get(index)
            .map_or(self.text.len(), |&end| end as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    fn set(&self, index: usize) -> Option<String> {
        Some(self.field(index))
            .filter(|field| !field.is_empty())
            .map(str::to_owned)
    }

    pub fn group_id(&self) -> &str {
        self.field(0)
    }

    /// The group's `Subject` (empty when not set).
    pub fn subject(&self) -> &str {
        self.field(1)
    }

    /// The group's `InviteLink`, when it has one.
    pub fn invite_link(&self) -> Option<String> {
        self.set(4)
    }

    /// The group as `status.observed`, read at `now`.
    pub fn observed(&self, now: jiff::Timestamp) -> ObservedGroup {
        ObservedGroup {
            subject: self.set(1),
            description: self.set(2),
            profile_picture_file: self.set(3),
            group_status: self.set(5),
            time: Some(Time::from_timestamp(now)),
        }
    }
}

struct Walk {
    /// When the walk started, on the callers' clock.
    started: jiff::Timestamp,
    /// When the walk ended, on the lister's clock (never before `started`).
    ended: jiff::Timestamp,
    /// When the walk finished, on the monotonic clock (tells waiters it is the walk they
    /// waited for).
    finished: Instant,
    result: WalkResult,
}

#[derive(Default)]
struct Slot {
    last: tokio::sync::Mutex<Option<Walk>>,
}

/// Shares `ListChatGroup` walks between reconciles (see the module docs). Cheap to share
/// behind an `Arc`; all methods take `&self`.
pub struct SharedLister {
    window: Duration,
    page_size: u32,
    slots: Mutex<Slots>,
    clock: Clock,
}

/// The lister's clock: the callers' clock, read when a walk ends.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// When a caller reads, on its clock, and how fresh the listing must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAt {
    /// The caller's now.
    pub now: jiff::Timestamp,
    /// Only a walk that started at or after this instant will do: the caller's own last CAMS
    /// write, whose effect the read must be able to see.
    pub listed_after: Option<jiff::Timestamp>,
}

#[derive(Default)]
struct Slots {
    by_space: HashMap<SpaceKey, Arc<Slot>>,
    last_sweep: Option<jiff::Timestamp>,
}

impl SharedLister {
    /// A lister reusing results for `window` (0: only callers waiting on an in-flight walk
    /// share it).
    pub fn new(window: Duration) -> Self {
        SharedLister {
            window,
            page_size: LIST_PAGE_SIZE,
            slots: Mutex::new(Slots::default()),
            clock: Arc::new(jiff::Timestamp::now),
        }
    }

    /// The same lister reading the callers' clock from `clock` when a walk ends (the wall
    /// clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same lister with another page size (at least 1).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The reuse window.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Finds the group `key` in its space's listing, walking the listing unless a shared walk
    /// can be used (see the module documentation).
    pub async fn find<C: CamsApi>(
        &self,
        api: &C,
        endpoint: &Endpoint,
        credentials: &Credentials,
        channel: ChannelType,
        key: &GroupKey,
        at: ReadAt,
    ) -> Result<Lookup<ListedGroup>, CamsError> {
        let (groups, end) = self
            .groups(api, endpoint, credentials, channel, key, at)
            .await?;
        Ok(groups
            .binary_search_by(|group| group.group_id().cmp(&key.group_id))
            .ok()
            .and_then(|index| groups.get(index))
            .cloned()
            .map_or(
                if end == WalkEnd::Truncated {
                    Lookup::Truncated
                } else {
                    Lookup::Missing
                },
                Lookup::Found,
            ))
    }

    /// Every group of `key`'s space and number (`key.group_id` is not used), sorted by ID, and
    /// whether the listing was cut at the page limit: a shared walk when one can be used (see
    /// the module documentation), else a new one.
    pub async fn groups<C: CamsApi>(
        &self,
        api: &C,
        endpoint: &Endpoint,
        credentials: &Credentials,
        channel: ChannelType,
        key: &GroupKey,
        at: ReadAt,
    ) -> Result<(Arc<[ListedGroup]>, WalkEnd), CamsError> {
        let ReadAt { now, listed_after } = at;
        let arrived = Instant::now();
        let space = SpaceKey {
            endpoint: endpoint.as_str().to_owned(),
            access_key_id: credentials.access_key_id.clone(),
            cust_space_id: key.cust_space_id.clone(),
            business_number: key.business_number.clone(),
            channel: channel.as_str(),
        };
        let slot = {
            let mut slots = self.slots();
            self.sweep(&mut slots, now);
            Arc::clone(slots.by_space.entry(space).or_default())
        };
        let mut last = slot.last.lock().await;
        // Callers that waited on the walk share its result, whatever it is. Later callers
        // within the window reuse a success or a recoverable failure (one throttled walk does
        // not turn into a burst of retries), but never a terminal one: a fixed Secret or
        // permission must take effect at once. Neither uses a walk older than its own write.
        let reusable = last.as_ref().is_some_and(|walk| {
            let shareable = match &walk.result {
                Ok(_) => true,
                Err(err) => err.class() == crate::cams::ErrorClass::Recoverable,
            };
            let fresh = listed_after.is_none_or(|write| walk.started >= write);
            fresh && (walk.finished >= arrived || (shareable && age(walk.ended, now) < self.window))
        });
        if !reusable {
            let result = self.walk(api, endpoint, credentials, channel, key).await;
            *last = Some(Walk {
                started: now,
                ended: (self.clock)().max(now),
                finished: Instant::now(),
                result,
            });
        }
        match last.as_ref().map(|walk| &walk.result) {
            Some(Ok((groups, end))) => Ok((Arc::clone(groups), *end)),
            Some(Err(err)) => Err(err.clone()),
            None => Ok((Arc::from(Vec::new()), WalkEnd::Complete)),
        }
    }

    /// Drops slots nobody uses whose walk is older than the window, at most once a window.
    fn sweep(&self, slots: &mut Slots, now: jiff::Timestamp) {
        let period = self.window.max(Duration::from_secs(1));
        if slots.last_sweep.is_some_and(|at| age(at, now) < period) {
            return;
        }
        slots.last_sweep = Some(now);
        let window = self.window;
        slots.by_space.retain(|_, slot| {
            if Arc::strong_count(slot) > 1 {
                return true;
            }
            match slot.last.try_lock() {
                Ok(last) => last
                    .as_ref()
                    .is_some_and(|walk| age(walk.ended, now) < window),
                Err(_) => true,
            }
        });
    }

    async fn walk<C: CamsApi>(
        &self,
        api: &C,
        endpoint: &Endpoint,
        credentials: &Credentials,
        channel: ChannelType,
        key: &GroupKey,
    ) -> WalkResult {
        let request = ListChatGroupRequest {
            cust_space_id: key.cust_space_id.clone(),
            business_number: key.business_number.clone(),
            channel_type: Some(channel.as_str().to_owned()),
            group_status: None,
            subject: None,
            page_index: 1,
            page_size: self.page_size,
        };
        let mut groups = Vec::new();
        let end = pager::walk(api, endpoint, credentials, &request, |page| {
            groups.extend(page.groups.iter().filter_map(ListedGroup::new));
            ControlFlow::Continue(())
        })
        .await?;
        // A group listed twice (the listing changed between pages) is kept once.
        groups.sort_by(|a, b| a.group_id().cmp(b.group_id()));
        groups.dedup_by(|a, b| a.group_id() == b.group_id());
        Ok((groups.into(), end))
    }
}

/// How long before `now` `then` was; `Duration::MAX` when `then` is in the future (a clock
/// that went backwards does not make an old walk look fresh).
fn age(then: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    Duration::try_from(then.duration_until(now)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cams::fake::FakeCams;
    use crate::cams::{ACTION_LIST_CHAT_GROUP, SecretString};

    fn creds(id: &str) -> Credentials {
        Credentials {
            access_key_id: id.to_owned(),
            access_key_secret: SecretString::new("secret"),
            security_token: None,
        }
    }

    fn key(space: &str, group: &str) -> GroupKey {
        GroupKey {
            cust_space_id: space.to_owned(),
            business_number: "8613800001234".to_owned(),
            group_id: group.to_owned(),
        }
    }

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + seconds).expect("valid time")
    }

    /// A routine read at `now` (no write of its own to see).
    fn read(now: jiff::Timestamp) -> ReadAt {
        ReadAt {
            now,
            listed_after: None,
        }
    }

    /// `lister.find` of `group` in `space`, with the key `id`, at `now`.
    async fn find(
        lister: &SharedLister,
        cams: &FakeCams,
        id: &str,
        space: &str,
        group: impl AsRef<str>,
        now: jiff::Timestamp,
    ) -> Result<Lookup<ListedGroup>, CamsError> {
        lister
            .find(
                cams,
                &endpoint(),
                &creds(id),
                ChannelType::Whatsapp,
                &key(space, group.as_ref()),
                read(now),
            )
            .await
    }

    fn endpoint() -> Endpoint {
        Endpoint::from_url("http://127.0.0.1:1/")
    }

    #[tokio::test]
    async fn walks_every_page_and_filters_by_group_id() {
        let cams = FakeCams::new();
        for i in 0..7 {
            cams.add_group(&key("s", &format!("G{i}")), Some(&format!("group {i}")));
        }
        let lister = SharedLister::new(Duration::ZERO).with_page_size(3);
        let found = find(&lister, &cams, "a", "s", "G6", at(0))
            .await
            .expect("listed");
        assert_eq!(
            found
                .found()
                .and_then(|g| g.observed(at(0)).subject)
                .as_deref(),
            Some("group 6")
        );
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 3, "pages of 3, 3 and 1");
        let missing = find(&lister, &cams, "a", "s", "NOPE", at(0))
            .await
            .expect("listed");
        assert_eq!(missing, Lookup::Missing);
        assert_eq!(
            cams.calls(ACTION_LIST_CHAT_GROUP),
            6,
            "window 0: walked again"
        );
    }

    #[tokio::test]
    async fn pages_smaller_than_asked_for_are_followed_to_the_total() {
        let cams = FakeCams::new().with_max_page_size(2);
        for i in 0..5 {
            cams.add_group(&key("s", &format!("G{i}")), None);
        }
        let lister = SharedLister::new(Duration::ZERO).with_page_size(50);
        let found = find(&lister, &cams, "a", "s", "G4", at(0))
            .await
            .expect("listed");
        assert!(found.is_found());
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 3);
    }

    #[tokio::test]
    async fn results_are_shared_within_the_window_per_space_and_identity() {
        let cams = FakeCams::new();
        for i in 0..5 {
            cams.add_group(&key("s", &format!("G{i}")), None);
        }
        cams.add_group(&key("t", "G0"), None);
        let lister = SharedLister::new(Duration::from_secs(3600));
        for i in 0u8..5 {
            let found = lister
                .find(
                    &cams,
                    &endpoint(),
                    &creds("a"),
                    ChannelType::Whatsapp,
                    &key("s", &format!("G{i}")),
                    read(at(i64::from(i) * 899)),
                )
                .await
                .expect("listed");
            assert!(found.is_found());
        }
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 1, "within the window");
        find(&lister, &cams, "a", "t", "G0", at(0))
            .await
            .expect("listed");
        find(&lister, &cams, "b", "s", "G0", at(0))
            .await
            .expect("listed");
        assert_eq!(
            cams.calls(ACTION_LIST_CHAT_GROUP),
            3,
            "other space, other identity"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_walk_even_with_no_window() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let cams = Arc::new(FakeCams::new().with_list_gate(Arc::clone(&gate)));
        for i in 0..20 {
            cams.add_group(&key("s", &format!("G{i}")), None);
        }
        let lister = Arc::new(SharedLister::new(Duration::ZERO));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let cams = Arc::clone(&cams);
                let lister = Arc::clone(&lister);
                tokio::spawn(async move {
                    lister
                        .find(
                            &*cams,
                            &endpoint(),
                            &creds("a"),
                            ChannelType::Whatsapp,
                            &key("s", &format!("G{i}")),
                            read(at(0)),
                        )
                        .await
                })
            })
            .collect();
        // Hold the first walk until all 20 callers hold the space's slot (the map's reference
        // plus one per caller), then let it finish.
        loop {
            let waiting = lister
                .slots()
                .by_space
                .values()
                .next()
                .map_or(0, Arc::strong_count);
            if waiting == 21 {
                break;
            }
            tokio::task::yield_now().await;
        }
        gate.add_permits(100);
        for task in tasks {
            let found = task.await.expect("task").expect("listed");
            assert!(found.is_found());
        }
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 1);
    }

    /// A lister whose clock reads the seconds in `clock` (past `at(0)`).
    fn lister_with_clock(
        window: Duration,
        clock: &Arc<std::sync::atomic::AtomicI64>,
    ) -> SharedLister {
        let clock = Arc::clone(clock);
        SharedLister::new(window).with_clock(Arc::new(move || {
            at(clock.load(std::sync::atomic::Ordering::SeqCst))
        }))
    }

    /// Spawns a read of `G0` in space `s` at `at`, and waits until a walk of the space holds
    /// its slot (the first such read walks, held by the gate; a later one queues behind it).
    async fn spawn_read(
        lister: &Arc<SharedLister>,
        cams: &Arc<FakeCams>,
        at: ReadAt,
    ) -> tokio::task::JoinHandle<Result<Lookup<ListedGroup>, CamsError>> {
        let (walker, cams) = (Arc::clone(lister), Arc::clone(cams));
        let task = tokio::spawn(async move {
            walker
                .find(
                    &*cams,
                    &endpoint(),
                    &creds("a"),
                    ChannelType::Whatsapp,
                    &key("s", "G0"),
                    at,
                )
                .await
        });
        loop {
            let walking = lister
                .slots()
                .by_space
                .values()
                .next()
                .is_some_and(|slot| slot.last.try_lock().is_err());
            if walking {
                break task;
            }
            tokio::task::yield_now().await;
        }
    }

    /// A walk that took longer than the window (a large space under a busy budget) is reused
    /// by the callers that come right after it: the window runs from its end. Measured from
    /// its start, every such walk was stale on arrival, and a cold start walked each space
    /// once for every few objects.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_walk_longer_than_the_window_is_shared_after_it_ends() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let cams = Arc::new(FakeCams::new().with_list_gate(Arc::clone(&gate)));
        cams.add_group(&key("s", "G0"), None);
        cams.add_group(&key("s", "G1"), None);
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let lister = Arc::new(lister_with_clock(Duration::from_secs(5), &clock));
        let walk = spawn_read(&lister, &cams, read(at(0))).await;
        // The walk takes 8 s on the callers' clock.
        clock.store(8, std::sync::atomic::Ordering::SeqCst);
        gate.add_permits(100);
        assert!(walk.await.expect("task").expect("listed").is_found());
        let later = find(&lister, &cams, "a", "s", "G1", at(10))
            .await
            .expect("listed");
        assert!(later.is_found());
        assert_eq!(
            cams.calls(ACTION_LIST_CHAT_GROUP),
            1,
            "2 s after the walk ended: shared"
        );
        find(&lister, &cams, "a", "s", "G1", at(14))
            .await
            .expect("listed");
        assert_eq!(
            cams.calls(ACTION_LIST_CHAT_GROUP),
            2,
            "6 s after the walk ended: walked again"
        );
    }

    /// A read that must see the caller's own write never uses a walk that started before
    /// it, not even one it waited for or one within the window: such a walk may have read
    /// the group before the write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_after_a_write_uses_no_walk_that_started_before_the_write() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let cams = Arc::new(FakeCams::new().with_list_gate(Arc::clone(&gate)));
        cams.add_group(&key("s", "G0"), None);
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let lister = Arc::new(lister_with_clock(Duration::from_secs(5), &clock));
        // A walk starts at 0; the caller's write is made at 1, while it runs.
        let early = spawn_read(&lister, &cams, read(at(0))).await;
        let after_write = ReadAt {
            now: at(2),
            listed_after: Some(at(1)),
        };
        let confirming = spawn_read(&lister, &cams, after_write).await;
        clock.store(2, std::sync::atomic::Ordering::SeqCst);
        gate.add_permits(100);
        assert!(early.await.expect("task").expect("listed").is_found());
        assert!(confirming.await.expect("task").expect("listed").is_found());
        assert_eq!(
            cams.calls(ACTION_LIST_CHAT_GROUP),
            2,
            "the read after the write walked again"
        );
        // A routine read within the window reuses the newest walk.
        find(&lister, &cams, "a", "s", "G0", at(3))
            .await
            .expect("listed");
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 2);
    }

    #[tokio::test]
    async fn terminal_errors_are_not_reused_by_later_callers() {
        let cams = FakeCams::new();
        cams.add_group(&key("s", "G0"), None);
        cams.fail_next(
            ACTION_LIST_CHAT_GROUP,
            CamsError::Gateway {
                action: ACTION_LIST_CHAT_GROUP,
                http_status: 400,
                code: Some("SignatureDoesNotMatch".to_owned()),
                message: None,
                request_id: None,
                host_id: None,
                recommend: None,
                access_denied_detail: None,
                retry_after: None,
            },
        );
        let lister = SharedLister::new(Duration::from_secs(3600));
        let (endpoint, creds, key) = (endpoint(), creds("a"), key("s", "G0"));
        let first = lister
            .find(
                &cams,
                &endpoint,
                &creds,
                ChannelType::Whatsapp,
                &key,
                read(at(0)),
            )
            .await;
        assert!(matches!(first, Err(CamsError::Gateway { .. })));
        // The Secret was fixed: the next caller lists again and finds the group.
        let second = lister
            .find(
                &cams,
                &endpoint,
                &creds,
                ChannelType::Whatsapp,
                &key,
                read(at(0)),
            )
            .await;
        assert!(matches!(second, Ok(Lookup::Found(_))));
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 2);
    }

    #[tokio::test]
    async fn recoverable_errors_are_shared_within_the_window() {
        let cams = FakeCams::new();
        cams.add_group(&key("s", "G0"), None);
        cams.fail_next(
            ACTION_LIST_CHAT_GROUP,
            CamsError::Transport {
                action: ACTION_LIST_CHAT_GROUP,
                endpoint: "http://127.0.0.1:1/".to_owned(),
                detail: "connection refused".to_owned(),
            },
        );
        let lister = SharedLister::new(Duration::from_secs(3600));
        for _ in 0..3 {
            let err = find(&lister, &cams, "a", "s", "G0", at(0)).await;
            assert!(matches!(err, Err(CamsError::Transport { .. })));
        }
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 1);
    }

    #[test]
    fn a_listed_group_keeps_each_field_and_drops_empty_ones() {
        let now = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let item = ChatGroupItem {
            group_id: Some("G1".to_owned()),
            business_number: Some("8613800001234".to_owned()),
            subject: Some("Sübject".to_owned()),
            description: Some(String::new()),
            profile_picture_file: Some("https://p/x.png".to_owned()),
            group_status: Some("ACTIVE".to_owned()),
            invite_link: Some("https://chat.whatsapp.com/x".to_owned()),
        };
        let group = ListedGroup::new(&item).expect("has an id");
        assert_eq!(group.group_id(), "G1");
        let o = group.observed(now);
        assert_eq!(o.subject.as_deref(), Some("Sübject"));
        assert_eq!(o.description, None);
        assert_eq!(o.profile_picture_file.as_deref(), Some("https://p/x.png"));
        assert_eq!(o.group_status.as_deref(), Some("ACTIVE"));
        assert_eq!(o.time, Some(Time::from_timestamp(now)));
        let only_id = ListedGroup::new(&ChatGroupItem {
            group_id: Some("G2".to_owned()),
            ..ChatGroupItem::default()
        })
        .expect("has an id")
        .observed(now);
        assert_eq!((only_id.subject, only_id.group_status), (None, None));
        for id in [None, Some(String::new())] {
            let item = ChatGroupItem {
                group_id: id,
                ..item.clone()
            };
            assert_eq!(ListedGroup::new(&item), None, "no GroupId, not kept");
        }
    }
}
