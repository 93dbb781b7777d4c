//! What the controller remembers about each object between reconciles: the inputs of a
//! terminal failure (so it is not retried until one changes), the last read of the group, the
//! Secret versions last used, and the status its own last write concluded (so a watch cache
//! that has not caught up with that write is not mistaken for the truth).
//!
//! The reconcile core is pure and plans from the object it is given; this memory is what the
//! controller adds to that object before calling it (see
//! [`reconcile_entry`](mod@super::reconcile_entry)). It is held in memory only: losing it (a
//! restart) costs at most one extra read per space, never a write. A background task forgets
//! objects no longer watched, so it follows the fleet.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::crd::{ChatGroupStatus, Time};
use crate::reconcile::credentials;

use super::Context;
use super::cached::CachedChatGroup;
use super::packed::Packed;

/// How often the per-object memory is pruned of objects no longer watched.
pub const MEMORY_PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// What identifies the inputs of a reconcile that ended in a terminal failure: the reconcile
/// is not repeated (no CAMS call) until one of them changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct InputFingerprint {
    pub(super) generation: Option<i64>,
    pub(super) paused: bool,
    /// The create-again annotation: a new value asks for another creation.
    pub(super) create_again: Option<String>,
    pub(super) secret_versions: Vec<(String, Option<String>)>,
}

/// The status this operator's last reconcile of an object concluded (written, or still to be
/// written when its patch failed), and the resourceVersions older than that write: the one
/// read before writing, that of the `Reconciling` mark written first, if any, and — when the
/// reconcile itself started from a stale copy — every version its predecessor superseded and
/// wrote. The watch cache can still hold one of them when the next reconcile starts (a
/// trigger queued during the reconcile runs as soon as it ends, and a requeue fires whether
/// or not the watch has caught up): that reconcile uses the status concluded instead of the
/// stale one, which would otherwise repeat the CAMS write or write an older status back.
#[derive(Clone, Debug)]
pub(super) struct OwnWrite {
    /// Oldest first; at most [`MAX_SUPERSEDED`].
    pub(super) superseded: Vec<Option<String>>,
    /// The status as packed JSON: every object holds one between a write and the next quiet
    /// reconcile (a whole cold start), so it is kept as small as the watch cache keeps it.
    pub(super) status: Packed,
    /// The status patch succeeded. Until it has, the next reconcile patches again.
    pub(super) written: bool,
    /// The resourceVersion the status patch gave the object, once it succeeded.
    pub(super) version: Option<String>,
}

/// Most superseded resourceVersions remembered per object: a watch lagging behind more of the
/// operator's own writes than this (each reconcile writes at most two) is not expected; the
/// oldest are forgotten first.
pub(super) const MAX_SUPERSEDED: usize = 16;

impl OwnWrite {
    /// Whether the copy read at `version` is older than this write.
    pub(super) fn supersedes(&self, version: &Option<String>) -> bool {
        self.superseded.contains(version)
    }

    /// The versions a write made by a reconcile that read at `version` supersedes, besides
    /// its own mark: `version` itself and, when `version` was already older than this write,
    /// everything this write superseded and the version it made.
    pub(super) fn superseded_by_next(
        own: Option<&OwnWrite>,
        version: &Option<String>,
    ) -> Vec<Option<String>> {
        let mut superseded = Vec::new();
        if let Some(own) = own.filter(|own| own.supersedes(version)) {
            superseded.extend(own.superseded.iter().filter(|v| *v != version).cloned());
            if own.version.is_some() {
                superseded.push(own.version.clone());
            }
        }
        superseded.push(version.clone());
        superseded
    }

    /// What a reconcile leaves as its own write: the outcome when it must be written (not yet
    /// accepted), else the status already stored on the way (a mark). `superseded` are the
    /// versions older than it; only the newest [`MAX_SUPERSEDED`] are kept.
    pub(super) fn after(
        mut superseded: Vec<Option<String>>,
        must_write: bool,
        stored: Option<&ChatGroupStatus>,
        outcome: &ChatGroupStatus,
    ) -> Self {
        let excess = superseded.len().saturating_sub(MAX_SUPERSEDED);
        superseded.drain(..excess);
        OwnWrite {
            superseded,
            status: match (must_write, stored) {
                (false, Some(stored)) => OwnWrite::text(stored),
                (false, None) => OwnWrite::text(&ChatGroupStatus::default()),
                (true, _) => OwnWrite::text(outcome),
            },
            written: !must_write,
            version: None,
        }
    }

    /// `status` as it is kept: packed compact JSON.
    pub(super) fn text(status: &ChatGroupStatus) -> Packed {
        Packed::pack(&serde_json::to_string(status).unwrap_or_default())
    }

    /// The status kept, read back.
    pub(super) fn status(&self) -> Option<ChatGroupStatus> {
        serde_json::from_str(&self.status.unpack().ok()?).ok()
    }
}

/// What the controller remembers about one object between reconciles. Losing it (a restart)
/// costs at most one extra read per space, never a write.
///
/// It belongs to one object, identified by its `uid`: an object deleted and created again
/// under the same name is a new object (its generation starts at 1 again), and nothing
/// remembered about the old one applies to it.
#[derive(Clone, Debug, Default)]
pub(super) struct Memory {
    /// The `metadata.uid` of the object this memory is about.
    uid: Option<String>,
    /// The inputs of the last reconcile, when it ended in a terminal failure (boxed, as this
    /// and `own_write` are: most objects have neither, and an empty box is one word in the
    /// hash table's slot instead of the whole value).
    pub(super) terminal: Option<Box<InputFingerprint>>,
    /// The last read of the group; reads that found nothing new are not written to the status
    /// (only timestamps would change), but they still schedule the next read.
    pub(super) last_read: Option<LastRead>,
    /// The resourceVersions of the Secrets used by the last reconcile.
    pub(super) secret_versions: Option<Vec<(String, Option<String>)>>,
    /// The status last written, and the resourceVersion of the object read before writing it.
    pub(super) own_write: Option<Box<OwnWrite>>,
}

/// When an object's group was last read.
#[derive(Clone, Copy, Debug)]
pub(super) struct LastRead {
    pub(super) observed: Time,
    pub(super) synced: Option<Time>,
}

impl Memory {
    /// Brings the status the core plans from up to date with what only memory knows: the
    /// latest read, and whether the credentials changed since the last reconcile (then the
    /// group is read again at once, so a broken rotation shows up without waiting for the
    /// resync).
    pub(super) fn apply_to(
        &self,
        status: &mut ChatGroupStatus,
        secret_versions: &[(String, Option<String>)],
    ) {
        let Some(observed) = status.observed.as_mut() else {
            return;
        };
        let rotated = self
            .secret_versions
            .as_deref()
            .is_some_and(|before| before != secret_versions);
        if rotated {
            observed.time = None;
            return;
        }
        if let Some(read) = self.last_read
            && observed.time.is_none_or(|t| t < read.observed)
        {
            observed.time = Some(read.observed);
            status.last_sync_time = read.synced.or(status.last_sync_time);
        }
    }
}

/// What one reconcile leaves in memory.
pub(super) struct Reconciled<'a> {
    /// The status this reconcile wrote or is about to write (or the mark it wrote), when it
    /// wrote anything.
    pub(super) own_write: Option<OwnWrite>,
    /// The resourceVersion of the object the reconcile read.
    pub(super) read_version: &'a Option<String>,
    pub(super) fingerprint: &'a InputFingerprint,
    /// The status the reconcile concluded.
    pub(super) status: &'a ChatGroupStatus,
    /// Whether it ended in a terminal failure (nothing is retried until an input changes).
    pub(super) terminal: bool,
}

impl Memory {
    /// Brings `status`, as the watch cache holds it, up to the outcome of our last reconcile
    /// when the cache has not caught up with it yet. Returns the status the API server holds
    /// as far as we know: the cache's, or our own write once it was accepted.
    pub(super) fn catch_up(
        &self,
        status: &mut Option<ChatGroupStatus>,
        read_version: &Option<String>,
    ) -> Option<ChatGroupStatus> {
        let mut stored = status.clone();
        if let Some(own) = &self.own_write
            && own.supersedes(read_version)
        {
            tracing::debug!(
                "the watch cache has not caught up with our last reconcile; using its outcome"
            );
            *status = own.status();
            if own.written {
                stored = own.status();
            }
        }
        stored
    }

    /// Keeps what the next reconcile needs of this one. An own write that the object read has
    /// caught up with is dropped: the watch cache then knows as much as memory does.
    pub(super) fn record(&mut self, reconciled: Reconciled<'_>) {
        let Reconciled {
            own_write,
            read_version,
            fingerprint,
            status,
            terminal,
        } = reconciled;
        if let Some(own) = own_write {
            self.own_write = Some(Box::new(own));
        } else if self
            .own_write
            .as_ref()
            .is_some_and(|own| !own.supersedes(read_version))
        {
            self.own_write = None;
        }
        self.terminal = terminal.then(|| Box::new(fingerprint.clone()));
        self.secret_versions = Some(fingerprint.secret_versions.clone());
        if let Some(observed) = status.observed.as_ref().and_then(|o| o.time) {
            self.last_read = Some(LastRead {
                observed,
                synced: status.last_sync_time,
            });
        }
    }
}

/// The key of an object's [`Memory`]: its namespace and name, and nothing else (an `ObjectRef`
/// would also hold room for a `uid` and a `resourceVersion` in every slot of the table).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct MemoryKey {
    namespace: Box<str>,
    name: Box<str>,
}

pub(super) fn memory_key(object: &CachedChatGroup) -> MemoryKey {
    MemoryKey {
        namespace: object.namespace().unwrap_or_default().into_boxed_str(),
        name: object.name_any().into_boxed_str(),
    }
}

/// What the controller remembers, by object.
#[derive(Debug, Default)]
pub(super) struct Memories(Mutex<HashMap<MemoryKey, Memory>>);

impl Memories {
    /// What is remembered about the object `key` with `uid`; nothing when the memory under
    /// that name is about another object.
    pub(super) fn recall(&self, key: &MemoryKey, uid: &Option<String>) -> Memory {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned())
            .filter(|m| &m.uid == uid)
            .unwrap_or_default()
    }

    /// Updates what the controller remembers about the object `key` with `uid` (a memory about
    /// another object of the same name is dropped first).
    pub(super) fn remember(
        &self,
        key: MemoryKey,
        uid: Option<String>,
        update: impl FnOnce(&mut Memory),
    ) {
        if let Ok(mut all) = self.0.lock() {
            let entry = all.entry(key).or_default();
            if entry.uid != uid {
                *entry = Memory {
                    uid,
                    ..Memory::default()
                };
            }
            update(entry);
        }
    }

    /// Forgets every object whose key is not in `present`.
    fn retain(&self, present: &HashSet<MemoryKey>) {
        if let Ok(mut memory) = self.0.lock() {
            memory.retain(|key, _| present.contains(key));
        }
    }
}

/// Forgets, every [`MEMORY_PRUNE_INTERVAL`], what the controller remembers about objects that
/// are no longer watched (deleted, or moved out of the shard), so memory follows the fleet.
pub(super) async fn prune_memory<C>(ctx: Arc<Context<C>>, stores: Vec<Store<CachedChatGroup>>) {
    loop {
        tokio::time::sleep(MEMORY_PRUNE_INTERVAL).await;
        let present: HashSet<MemoryKey> = stores
            .iter()
            .flat_map(|store| store.state())
            .map(|object| memory_key(&object))
            .collect();
        ctx.memory.retain(&present);
        ctx.secrets.retain_referenced(&referenced_secrets(&stores));
    }
}

/// Every Secret (namespace, name) some watched ChatGroup may use.
fn referenced_secrets(stores: &[Store<CachedChatGroup>]) -> HashSet<(String, String)> {
    stores
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|object| {
            let namespace = object.namespace()?;
            let spec = object.spec().ok()?;
            Some(
                credentials::secret_names(&spec)
                    .into_iter()
                    .map(move |name| (namespace.clone(), name)),
            )
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> MemoryKey {
        MemoryKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn version(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn a_memory_belongs_to_one_object_of_a_name() {
        let memories = Memories::default();
        let old = version("uid-1");
        memories.remember(key("a"), old.clone(), |m| {
            m.secret_versions = Some(Vec::new())
        });
        assert!(memories.recall(&key("a"), &old).secret_versions.is_some());
        // The same name, another object: nothing about the old one applies.
        let new = version("uid-2");
        assert!(memories.recall(&key("a"), &new).secret_versions.is_none());
        memories.remember(key("a"), new.clone(), |_| {});
        assert!(memories.recall(&key("a"), &new).secret_versions.is_none());
        assert!(memories.recall(&key("a"), &old).secret_versions.is_none());
    }

    #[test]
    fn objects_no_longer_present_are_forgotten() {
        let memories = Memories::default();
        let uid = version("uid");
        for name in ["a", "b"] {
            memories.remember(key(name), uid.clone(), |m| {
                m.secret_versions = Some(Vec::new())
            });
        }
        memories.retain(&HashSet::from([key("b")]));
        assert!(memories.recall(&key("a"), &uid).secret_versions.is_none());
        assert!(memories.recall(&key("b"), &uid).secret_versions.is_some());
    }

    #[test]
    fn a_write_from_a_stale_copy_supersedes_what_its_predecessor_superseded_and_wrote() {
        let own = OwnWrite {
            superseded: vec![version("1"), version("2")],
            status: OwnWrite::text(&ChatGroupStatus::default()),
            written: true,
            version: version("3"),
        };
        assert!(own.supersedes(&version("2")));
        assert!(!own.supersedes(&version("3")));
        // Read at the predecessor's own write: only that version is superseded.
        assert_eq!(
            OwnWrite::superseded_by_next(Some(&own), &version("3")),
            vec![version("3")]
        );
        // Read at a version older than the predecessor's write: everything it knew, too.
        assert_eq!(
            OwnWrite::superseded_by_next(Some(&own), &version("2")),
            vec![version("1"), version("3"), version("2")]
        );
        assert_eq!(own.status(), Some(ChatGroupStatus::default()));
    }
}
