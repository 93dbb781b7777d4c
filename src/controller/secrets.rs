//! The Secrets ChatGroups use, known without holding the cluster's Secrets in memory.
//!
//! Secrets are watched as metadata only (`PartialObjectMetadata`: no `data` crosses the wire or
//! stays in memory), stripped further to their name, namespace and resourceVersion. A Secret's
//! data is read — one GET — only when a ChatGroup references it and its resourceVersion
//! changed since the last read; the decoded data of referenced Secrets is kept for the next
//! reconciles and dropped when no ChatGroup references the Secret any more. A relist or a
//! watch restart therefore reads nothing that did not change, and a cluster full of Helm
//! release Secrets costs only their names.
//!
//! `read_secrets` is how a reconcile reads the Secrets its object uses, through that cache.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::{Context, Error, KUBE_CALL_TIMEOUT, operations};

/// A Secret's data by key.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// A Secret's namespace and name.
type Key = (String, String);

/// What the operator knows of one Secret, as the reconcile needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRead {
    /// The Secret's data, `None` when it does not exist.
    pub data: Option<SecretData>,
    /// Its resourceVersion, `None` when it does not exist.
    pub version: Option<String>,
}

/// The decoded data of one referenced Secret, at one resourceVersion.
#[derive(Clone, Debug)]
struct Cached {
    version: String,
    data: SecretData,
}

/// The metadata of watched Secrets and the data of referenced ones.
#[derive(Default)]
pub struct Secrets {
    /// One metadata store per watched scope (all namespaces, or one per `--namespace`).
    stores: RwLock<Vec<Store<PartialObjectMeta<Secret>>>>,
    /// Data of referenced Secrets, by namespace and name.
    cache: Mutex<HashMap<Key, Cached>>,
    /// One lock per Secret being read, so that reconciles needing the same Secret at once
    /// read it once: the others wait, then find it in `cache`.
    reading: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// Where a Secret's current version comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Known {
    /// The metadata watch has listed the Secret's scope: the Secret's version, or `None`
    /// when it does not exist.
    Watched(Option<String>),
    /// The watch has not completed its first list yet (or does not cover the namespace).
    Unknown,
}

impl Secrets {
    /// Adds the metadata store of one watched scope.
    pub fn add_store(&self, store: Store<PartialObjectMeta<Secret>>) {
        self.stores
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(store);
    }

    /// What the metadata watch says of Secret `namespace`/`name`.
    pub fn known(&self, namespace: &str, name: &str) -> Known {
        let key = ObjectRef::<PartialObjectMeta<Secret>>::new(name).within(namespace);
        let stores = self.stores.read().unwrap_or_else(PoisonError::into_inner);
        for store in stores.iter() {
            if let Some(meta) = store.get(&key) {
                return Known::Watched(meta.resource_version());
            }
        }
        // Absent from a store that has listed its scope: the Secret does not exist. A store
        // still listing knows nothing yet.
        let listed = !stores.is_empty() && stores.iter().all(Store::is_ready_now);
        if listed {
            Known::Watched(None)
        } else {
            Known::Unknown
        }
    }

    /// Waits (at most `limit`) until every metadata watch has completed its first list, so
    /// that reconciles started while the operator starts do not read Secrets one by one.
    /// Returns at once when nothing is watched.
    pub async fn wait_listed(&self, limit: std::time::Duration) {
        let stores: Vec<Store<PartialObjectMeta<Secret>>> = self
            .stores
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let deadline = tokio::time::Instant::now() + limit;
        for store in &stores {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !super::listed(store, Some(left)).await {
                return;
            }
        }
    }

    /// The cached data of `namespace`/`name` at `version`, if it was read at that version.
    pub fn cached(&self, namespace: &str, name: &str, version: &str) -> Option<SecretData> {
        self.lock()
            .get(&(namespace.to_owned(), name.to_owned()))
            .filter(|c| c.version == version)
            .map(|c| c.data.clone())
    }

    /// Remembers the data read at `version`.
    pub fn remember(&self, namespace: &str, name: &str, version: String, data: SecretData) {
        self.lock().insert(
            (namespace.to_owned(), name.to_owned()),
            Cached { version, data },
        );
    }

    /// Forgets the data of every Secret not in `referenced` (namespace, name).
    pub fn retain_referenced(&self, referenced: &HashSet<Key>) {
        self.lock().retain(|key, _| referenced.contains(key));
        self.reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| referenced.contains(key));
    }

    /// Waits for the right to read Secret `namespace`/`name`: one reader at a time per
    /// Secret. The reader checks the cache again once it holds the guard.
    pub async fn reading(&self, namespace: &str, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// How many Secrets' data is held.
    pub fn cached_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Readiness of a reflector store without waiting.
trait ReadyNow {
    fn is_ready_now(&self) -> bool;
}

impl ReadyNow for Store<PartialObjectMeta<Secret>> {
    fn is_ready_now(&self) -> bool {
        use futures::FutureExt as _;
        // A ready store answers at once; a pending answer only means "not yet".
        matches!(self.wait_until_ready().now_or_never(), Some(Ok(())))
    }
}

/// Secret data by name (absent Secrets are left out).
pub(super) type SecretsByName = BTreeMap<String, SecretData>;

/// Secret data by name and each Secret's resourceVersion.
pub(super) type SecretReads = (SecretsByName, Vec<(String, Option<String>)>);

/// The Secrets `names` in `namespace`, as a reconcile reads them: each from the data cache
/// when its version was read before, else with one GET.
pub(super) async fn read_secrets<C>(
    ctx: &Context<C>,
    namespace: &str,
    names: &[String],
) -> Result<SecretReads, Error> {
    let mut secrets = BTreeMap::new();
    let mut versions = Vec::new();
    for name in names {
        let read = read_secret(ctx, namespace, name).await?;
        versions.push((name.clone(), read.version));
        if let Some(data) = read.data {
            secrets.insert(name.clone(), data);
        }
    }
    Ok((secrets, versions))
}

/// One Secret as the reconcile sees it: absent, or its data at the version the metadata watch
/// reports — from memory when that version was read before, else with one GET.
async fn read_secret<C>(
    ctx: &Context<C>,
    namespace: &str,
    name: &str,
) -> Result<SecretRead, Error> {
    if ctx.secrets.known(namespace, name) == Known::Unknown {
        ctx.secrets.wait_listed(KUBE_CALL_TIMEOUT).await;
    }
    // One read per Secret at a time: reconciles needing it meanwhile then find it cached.
    let _reading = ctx.secrets.reading(namespace, name).await;
    let known = ctx.secrets.known(namespace, name);
    match &known {
        Known::Watched(None) => {
            return Ok(SecretRead {
                data: None,
                version: None,
            });
        }
        Known::Watched(Some(version)) => {
            if let Some(data) = ctx.secrets.cached(namespace, name, version) {
                return Ok(SecretRead {
                    data: Some(data),
                    version: Some(version.clone()),
                });
            }
        }
        Known::Unknown => {}
    }
    let read = tokio::time::timeout(KUBE_CALL_TIMEOUT, get(&ctx.client, namespace, name))
        .await
        .map_err(|_| Error::Timeout {
            operation: "reading a Secret",
            timeout: KUBE_CALL_TIMEOUT,
        })?;
    ctx.note_access(operations::READ_SECRETS, &read);
    ctx.metrics.secret_reads.inc();
    let found = read.map_err(|source| Error::ReadSecret {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    Ok(match found {
        Some((version, data)) => {
            ctx.secrets
                .remember(namespace, name, version.clone(), data.clone());
            SecretRead {
                data: Some(data),
                version: Some(version),
            }
        }
        None => SecretRead {
            data: None,
            version: None,
        },
    })
}

/// Reads Secret `namespace`/`name` from the API (a Secret that does not exist is `None`).
pub async fn get(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<(String, SecretData)>, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api.get_opt(name).await?;
    Ok(secret.map(|secret| {
        let version = secret.resource_version().unwrap_or_default();
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        (version, data)
    }))
}

/// Keeps only what the operator needs of a watched Secret's metadata: its name, namespace,
/// uid and resourceVersion. Labels, annotations (`kubectl apply` stores a Secret's whole data
/// in one) and managed fields go.
pub fn strip(meta: &mut PartialObjectMeta<Secret>) {
    let metadata = &mut meta.metadata;
    metadata.labels = None;
    metadata.annotations = None;
    metadata.managed_fields = None;
    metadata.owner_references = None;
    metadata.finalizers = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_data_is_used_only_at_its_version_and_dropped_when_unreferenced() {
        let secrets = Secrets::default();
        let data: SecretData = [("accessKeyId".to_owned(), b"id".to_vec())].into();
        secrets.remember("team", "creds", "7".into(), data.clone());
        assert_eq!(secrets.cached("team", "creds", "7"), Some(data));
        assert_eq!(
            secrets.cached("team", "creds", "8"),
            None,
            "a new version is read"
        );
        assert_eq!(secrets.cached("other", "creds", "7"), None);
        secrets.retain_referenced(&HashSet::new());
        assert_eq!(secrets.cached_count(), 0);
    }

    #[test]
    fn without_a_listed_watch_nothing_is_known() {
        let secrets = Secrets::default();
        assert_eq!(secrets.known("team", "creds"), Known::Unknown);
    }

    #[test]
    fn only_identity_and_version_are_kept_of_a_watched_secret() {
        let mut meta: PartialObjectMeta<Secret> = serde_json::from_value(serde_json::json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": {
                "name": "creds", "namespace": "team", "uid": "u", "resourceVersion": "7",
                "labels": {"a": "b"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{}}"},
                "managedFields": [{"manager": "kubectl"}],
            },
        }))
        .expect("metadata");
        strip(&mut meta);
        assert_eq!(meta.metadata.name.as_deref(), Some("creds"));
        assert_eq!(meta.metadata.resource_version.as_deref(), Some("7"));
        assert!(meta.metadata.annotations.is_none());
        assert!(meta.metadata.labels.is_none());
        assert!(meta.metadata.managed_fields.is_none());
    }
}
