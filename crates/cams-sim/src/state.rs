//! The simulator's memory: groups, keys, faults, the clock, nonces, counters and the request log.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use jiff::{SignedDuration, Timestamp};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::config::{AccessKeySeed, SimConfig, StsConfig};
use crate::faults::{ActionFaults, Decision, FaultTiming, ForcedError, action_rng, decide};
use crate::group::{Group, GroupId};
use crate::protocol::{GROUP_STATUS_ACTIVE, GROUP_STATUS_CREATING};
use crate::verify::{MAX_CLOCK_SKEW, SignatureVersion};

/// Most nonces remembered at once; beyond it the oldest are forgotten early.
const MAX_NONCES: usize = 1_000_000;

/// The keys the simulated STS issued, by expiry, so that long-expired ones can be forgotten.
#[derive(Debug, Default)]
pub(crate) struct IssuedKeys {
    pub(crate) by_expiry: VecDeque<(Timestamp, String)>,
}

/// One request as the simulator saw it. Never holds a secret: `Signature`, `SecurityToken` and
/// other credential parameters are left out, and of the headers only `User-Agent` is recorded.
///
/// `received` and `finished` are instants of the process's monotonic clock (not serialized),
/// so a test can check that the calls of two callers (told apart by `user_agent`) never
/// overlapped in time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// `RequestId` of the answer (also assigned to dropped calls).
    pub request_id: String,
    /// When it arrived, by the simulator's clock.
    pub time: Timestamp,
    /// HTTP method.
    pub method: String,
    /// `Action` (query parameter for V1, `x-acs-action` for V3), when given.
    pub action: Option<String>,
    /// `Version`, when given.
    pub version: Option<String>,
    /// Signature scheme the request used.
    pub signature_version: SignatureVersion,
    /// AccessKey ID, when given (not a secret).
    pub access_key_id: Option<String>,
    /// Query and form parameters, without credential parameters.
    pub params: BTreeMap<String, String>,
    /// `GroupId` parameter, when given.
    pub group_id: Option<String>,
    /// HTTP status of the answer; `None` when the client got no answer (a dropped connection,
    /// a lost answer, or a call the client abandoned).
    pub http_status: Option<u16>,
    /// `Code` of the answer; `None` when the client got no answer.
    pub code: Option<String>,
    /// `User-Agent` header, when given (the operator names its instance in it).
    pub user_agent: Option<String>,
    /// When the request arrived.
    #[serde(skip)]
    pub received: tokio::time::Instant,
    /// When the answer was ready (any change the call made was made by then), or when the
    /// client went away without waiting for it.
    #[serde(skip)]
    pub finished: tokio::time::Instant,
    /// The client closed the connection before the answer was ready (it timed out, or gave
    /// up): the call was cut short and changed nothing (`http_status` and `code` are `None`).
    pub abandoned: bool,
    /// `Code` of the answer the call produced and never sent (a lost-answer fault): the
    /// operation ran, with whatever effect it had, and then the connection was closed instead
    /// of the answer being written. `None` for every other call, dropped connections included
    /// (those are decided before the operation and change nothing).
    pub lost_answer_code: Option<String>,
}

/// Parameters never recorded in the log.
pub(crate) const UNLOGGED_PARAMS: &[&str] = &[
    "Signature",
    "SecurityToken",
    "AccessKeySecret",
    "BearerToken",
    "OIDCToken",
];

/// Counts for one action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionStats {
    /// Every call received, whatever the outcome.
    pub total: u64,
    /// Calls answered, by `Code`.
    pub by_code: BTreeMap<String, u64>,
    /// Calls whose connection was dropped.
    pub dropped: u64,
    /// Calls the client gave up on before the answer was ready.
    #[serde(default)]
    pub abandoned: u64,
    /// Calls that ran and whose answer was then not sent (lost-answer faults): not counted in
    /// `dropped` nor by code.
    #[serde(default)]
    pub lost_answers: u64,
}

/// Counters and the request log, as `GET /_sim/stats` returns them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// By action name; calls without an `Action` count under `""`.
    pub calls: BTreeMap<String, ActionStats>,
    /// The most recent requests, oldest first.
    pub log: Vec<LoggedRequest>,
    /// Entries dropped from the log because it was full.
    pub log_dropped: u64,
}

/// The simulator's clock: the system clock shifted by an offset, or a fixed time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// System time plus an offset (zero by default).
    System {
        /// Added to the system time.
        offset: SignedDuration,
    },
    /// Always this time.
    Fixed(Timestamp),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::System {
            offset: SignedDuration::ZERO,
        }
    }
}

impl Clock {
    /// The current time by this clock.
    pub fn now(&self) -> Timestamp {
        match *self {
            Clock::System { offset } => {
                let now = Timestamp::now();
                now.checked_add(offset).unwrap_or(now)
            }
            Clock::Fixed(at) => at,
        }
    }
}

/// Nonces seen in the last 15 minutes (the longest a timestamp can be off), per AccessKey ID.
#[derive(Debug, Default)]
pub(crate) struct NonceStore {
    seen: HashSet<(String, String)>,
    order: VecDeque<(Timestamp, String, String)>,
}

impl NonceStore {
    /// Records the nonce; `false` when it was already used.
    pub(crate) fn check_and_insert(&mut self, key_id: &str, nonce: &str, now: Timestamp) -> bool {
        let horizon = now.checked_sub(MAX_CLOCK_SKEW * 2).unwrap_or(now);
        while let Some((at, _, _)) = self.order.front() {
            if *at >= horizon && self.order.len() < MAX_NONCES {
                break;
            }
            if let Some((_, k, n)) = self.order.pop_front() {
                self.seen.remove(&(k, n));
            }
        }
        let entry = (key_id.to_owned(), nonce.to_owned());
        if self.seen.contains(&entry) {
            return false;
        }
        self.seen.insert(entry);
        self.order
            .push_back((now, key_id.to_owned(), nonce.to_owned()));
        true
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

/// Everything mutable, behind one lock that is never held across an await.
#[derive(Debug)]
pub(crate) struct State {
    pub keys: HashMap<String, AccessKeySeed>,
    pub groups: BTreeMap<GroupId, Group>,
    /// When each group `AddChatGroup` created `CREATING` finishes being created, by the clock.
    /// Nothing runs at that time: [`State::settle`] applies what is due whenever the state is
    /// read.
    creations: BTreeMap<GroupId, Timestamp>,
    /// How long a group created by `AddChatGroup` stays `CREATING` (zero: `ACTIVE` at once).
    pub creation_delay: std::time::Duration,
    pub faults: HashMap<String, ActionFaults>,
    pub forced: HashMap<String, ForcedError>,
    pub seed: u64,
    rngs: HashMap<String, StdRng>,
    pub id_rng: StdRng,
    pub nonces: NonceStore,
    pub clock: Clock,
    pub sts: StsConfig,
    pub issued: IssuedKeys,
    pub stats: BTreeMap<String, ActionStats>,
    log: VecDeque<LoggedRequest>,
    log_capacity: usize,
    log_dropped: u64,
}

impl State {
    pub(crate) fn new(config: SimConfig, clock: Clock) -> State {
        let mut state = State {
            keys: HashMap::new(),
            groups: BTreeMap::new(),
            creations: BTreeMap::new(),
            creation_delay: std::time::Duration::from_millis(config.creation_delay_ms),
            faults: config.faults.into_iter().collect(),
            forced: config.forced_codes.into_iter().collect(),
            seed: config.seed,
            rngs: HashMap::new(),
            id_rng: StdRng::seed_from_u64(config.seed),
            nonces: NonceStore::default(),
            clock,
            sts: config.sts,
            issued: IssuedKeys::default(),
            stats: BTreeMap::new(),
            log: VecDeque::new(),
            log_capacity: config.log_capacity.max(1),
            log_dropped: 0,
        };
        for key in config.access_keys {
            state.keys.insert(key.id.clone(), key);
        }
        for group in config.groups {
            state.put_group(group);
        }
        state
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Stores a group, stamping `gmtModifier` when it has none. A group stored this way is as
    /// given: a creation pending under its key is forgotten (a seeded `CREATING` group stays
    /// `CREATING` until someone changes it).
    pub(crate) fn put_group(&mut self, mut group: Group) {
        if group.gmt_modifier.is_none() {
            group.gmt_modifier = Some(self.now().as_millisecond());
        }
        let key = group.key();
        self.creations.remove(&key);
        self.groups.insert(key, group);
    }

    /// Stores a group that `AddChatGroup` just asked for: `CREATING` until the creation delay
    /// has passed by the clock, or `ACTIVE` at once when the delay is zero.
    pub(crate) fn create_group(&mut self, group: Group) {
        let now = self.now();
        let key = group.key();
        if self.creation_delay.is_zero() {
            self.put_group(group.status(GROUP_STATUS_ACTIVE));
            return;
        }
        let delay = jiff::SignedDuration::try_from(self.creation_delay)
            .unwrap_or(jiff::SignedDuration::MAX);
        // A delay beyond the calendar's end never finishes, which is what such a delay means.
        let ready = now.checked_add(delay).unwrap_or(Timestamp::MAX);
        self.put_group(group.status(GROUP_STATUS_CREATING));
        self.creations.insert(key, ready);
    }

    /// Removes a group, with any creation pending under its key.
    pub(crate) fn remove_group(&mut self, key: &GroupId) -> Option<Group> {
        self.creations.remove(key);
        self.groups.remove(key)
    }

    /// Finishes the creations that are due by the clock: a group still `CREATING` becomes
    /// `ACTIVE`, with `gmtModifier` at the moment it did. A group whose status someone changed
    /// meanwhile keeps it. Moving the clock back later does not undo a finished creation.
    pub(crate) fn settle(&mut self) {
        if self.creations.is_empty() {
            return;
        }
        let now = self.now();
        let due: Vec<(GroupId, Timestamp)> = self
            .creations
            .iter()
            .filter(|(_, ready)| **ready <= now)
            .map(|(key, ready)| (key.clone(), *ready))
            .collect();
        for (key, ready) in due {
            self.creations.remove(&key);
            if let Some(group) = self.groups.get_mut(&key)
                && group.group_status == GROUP_STATUS_CREATING
            {
                group.group_status = GROUP_STATUS_ACTIVE.to_owned();
                group.gmt_modifier = Some(ready.as_millisecond());
            }
        }
    }

    pub(crate) fn touch(&mut self, key: &GroupId) {
        let now = self.now().as_millisecond();
        if let Some(group) = self.groups.get_mut(key) {
            group.gmt_modifier = Some(now);
        }
    }

    /// The fate of the next call of `action` (see [`super::faults`]).
    pub(crate) fn decide(&mut self, action: &str) -> (Decision, FaultTiming) {
        let Some(faults) = self.faults.get_mut(action) else {
            return (Decision::Proceed, FaultTiming::default());
        };
        let seed = self.seed;
        let rng = self
            .rngs
            .entry(action.to_owned())
            .or_insert_with(|| action_rng(seed, action));
        (decide(faults, rng), faults.timing())
    }

    pub(crate) fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.rngs.clear();
        self.id_rng = StdRng::seed_from_u64(seed);
    }

    pub(crate) fn record(&mut self, entry: LoggedRequest) {
        let stats = self
            .stats
            .entry(entry.action.clone().unwrap_or_default())
            .or_default();
        stats.total += 1;
        match &entry.code {
            Some(code) => *stats.by_code.entry(code.clone()).or_default() += 1,
            None if entry.abandoned => stats.abandoned += 1,
            None if entry.lost_answer_code.is_some() => stats.lost_answers += 1,
            None => stats.dropped += 1,
        }
        if self.log.len() >= self.log_capacity {
            self.log.pop_front();
            self.log_dropped += 1;
        }
        self.log.push_back(entry);
    }

    pub(crate) fn reset_counters(&mut self) {
        self.stats.clear();
        self.log.clear();
        self.log_dropped = 0;
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            calls: self.stats.clone(),
            log: self.log.iter().cloned().collect(),
            log_dropped: self.log_dropped,
        }
    }

    pub(crate) fn log(&self) -> Vec<LoggedRequest> {
        self.log.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GroupEdit;

    #[test]
    fn nonces_are_single_use_and_forgotten_after_the_window() {
        let mut store = NonceStore::default();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        assert!(store.check_and_insert("k", "n1", t0));
        assert!(!store.check_and_insert("k", "n1", t0));
        assert!(store.check_and_insert("other", "n1", t0));
        let later = t0 + SignedDuration::from_secs(31 * 60);
        assert!(store.check_and_insert("k", "n2", later));
        assert_eq!(store.len(), 1, "old nonces are evicted");
        assert!(store.check_and_insert("k", "n1", later));
    }

    #[test]
    fn group_edit_distinguishes_absent_from_null() {
        let edit: GroupEdit = serde_json::from_str(
            r#"{"custSpaceId":"s","businessNumber":"1","groupId":"g","subject":"New","description":null}"#,
        )
        .expect("parses");
        let mut group = Group::new("s", "1", "g")
            .subject("Old")
            .description("D")
            .profile_picture_file("https://x/p.jpg");
        edit.apply(&mut group);
        assert_eq!(group.subject.as_deref(), Some("New"));
        assert_eq!(group.description, None);
        assert_eq!(
            group.profile_picture_file.as_deref(),
            Some("https://x/p.jpg")
        );
    }

    #[test]
    fn log_is_bounded_and_counts_by_code() {
        let config = SimConfig {
            log_capacity: 2,
            ..SimConfig::default()
        };
        let mut state = State::new(config, Clock::default());
        for (code, lost) in [
            (Some("OK"), None),
            (Some("OK"), None),
            (None, None),
            (None, Some("OK")),
        ] {
            state.record(LoggedRequest {
                request_id: "R".into(),
                time: Timestamp::UNIX_EPOCH,
                method: "POST".into(),
                action: Some("ListChatGroup".into()),
                version: None,
                signature_version: SignatureVersion::V1,
                access_key_id: None,
                params: BTreeMap::new(),
                group_id: None,
                http_status: code.map(|_| 200),
                code: code.map(str::to_owned),
                user_agent: None,
                received: tokio::time::Instant::now(),
                finished: tokio::time::Instant::now(),
                abandoned: false,
                lost_answer_code: lost.map(str::to_owned),
            });
        }
        let stats = state.stats();
        assert_eq!(stats.log.len(), 2);
        assert_eq!(stats.log_dropped, 2);
        let list = &stats.calls["ListChatGroup"];
        assert_eq!(list.total, 4);
        assert_eq!(list.by_code["OK"], 2);
        assert_eq!(list.dropped, 1);
        assert_eq!(list.lost_answers, 1);
        assert_eq!(list.abandoned, 0);
        assert_eq!(stats.log[1].lost_answer_code.as_deref(), Some("OK"));
    }
}
