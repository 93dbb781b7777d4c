//! [`SimHandle`]: reads and steers a running simulator from a test or the admin endpoints.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::{AccessKeySeed, StsConfig};
use crate::error::SimError;
use crate::faults::{ActionFaults, ForcedError};
use crate::group::{Group, GroupEdit};
use crate::secret::Secret;
use crate::state::{Clock, LoggedRequest, State, Stats};

/// Reads and steers a running simulator: counters, the request log, groups, faults, forced
/// codes, keys and the clock. Cheap to clone; every method takes a short lock.
#[derive(Clone)]
pub struct SimHandle {
    pub(crate) state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The state, brought up to date with the clock: every read and every call goes through
    /// here, so group creations finish when they are due without a task of their own.
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way that
        // matters to a test double: keep serving.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.settle();
        state
    }

    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    /// Calls received for `action` (whatever their outcome) since start or the last reset.
    pub fn call_count(&self, action: &str) -> u64 {
        self.lock().stats.get(action).map_or(0, |s| s.total)
    }
    /// Calls of `action` answered with `code`.
    pub fn code_count(&self, action: &str, code: &str) -> u64 {
        self.lock()
            .stats
            .get(action)
            .and_then(|s| s.by_code.get(code).copied())
            .unwrap_or(0)
    }
    /// Counters by action and the request log.
    pub fn stats(&self) -> Stats {
        self.lock().stats()
    }
    /// The request log, oldest first (bounded: see
    /// [`SimulatorBuilder::log_capacity`](crate::SimulatorBuilder::log_capacity)).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.lock().log()
    }
    /// The logged requests of `action`, oldest first.
    pub fn requests_for(&self, action: &str) -> Vec<LoggedRequest> {
        self.lock()
            .log()
            .into_iter()
            .filter(|r| r.action.as_deref() == Some(action))
            .collect()
    }
    /// Clears the counters and the request log (groups, faults and keys stay).
    pub fn reset_counters(&self) {
        self.lock().reset_counters();
    }

    /// Replaces the faults of `action`.
    pub fn set_faults(&self, action: &str, faults: ActionFaults) -> Result<(), SimError> {
        faults
            .validate()
            .map_err(|detail| SimError::InvalidFaults {
                action: action.to_owned(),
                detail,
            })?;
        self.lock().faults.insert(action.to_owned(), faults);
        Ok(())
    }
    /// Removes the faults of `action`.
    pub fn clear_faults(&self, action: &str) {
        self.lock().faults.remove(action);
    }
    /// The faults of `action` now (with what is left of its script).
    pub fn faults(&self, action: &str) -> Option<ActionFaults> {
        self.lock().faults.get(action).cloned()
    }
    /// Answers every call naming `group_id` with business error `code` (HTTP 200).
    pub fn force_code(&self, group_id: &str, code: &str) {
        self.lock()
            .forced
            .insert(group_id.to_owned(), ForcedError::business(code));
    }
    /// Answers every call naming `group_id` with `error`.
    pub fn force_error(&self, group_id: &str, error: ForcedError) -> Result<(), SimError> {
        error
            .validate()
            .map_err(|detail| SimError::InvalidForcedCode {
                group_id: group_id.to_owned(),
                detail,
            })?;
        self.lock().forced.insert(group_id.to_owned(), error);
        Ok(())
    }
    /// Stops forcing a code for `group_id`.
    pub fn clear_forced_code(&self, group_id: &str) {
        self.lock().forced.remove(group_id);
    }
    /// Restarts every random stream from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.lock().reseed(seed);
    }

    /// The group, if it exists.
    pub fn group(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
    ) -> Option<Group> {
        self.lock()
            .groups
            .get(&key(cust_space_id, business_number, group_id))
            .cloned()
    }
    /// Every group, ordered by (`custSpaceId`, `businessNumber`, `groupId`).
    pub fn groups(&self) -> Vec<Group> {
        self.lock().groups.values().cloned().collect()
    }
    /// Adds or replaces a group (stamping `gmtModifier` when it has none).
    pub fn upsert_group(&self, group: Group) -> Result<(), SimError> {
        group
            .validate()
            .map_err(|detail| SimError::InvalidGroup { detail })?;
        self.lock().put_group(group);
        Ok(())
    }
    /// Changes a group from outside the API (someone editing it in WhatsApp): `edit` runs on
    /// the stored group, then `gmtModifier` moves to now unless `edit` set it. `false` when the
    /// group does not exist.
    pub fn edit_group(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
        edit: impl FnOnce(&mut Group),
    ) -> bool {
        let mut state = self.lock();
        let now = state.now().as_millisecond();
        let Some(group) = state
            .groups
            .get_mut(&key(cust_space_id, business_number, group_id))
        else {
            return false;
        };
        let before = group.gmt_modifier;
        edit(group);
        // The keys are the map's; an edit cannot move the group.
        group.cust_space_id = cust_space_id.to_owned();
        group.business_number = business_number.to_owned();
        group.group_id = group_id.to_owned();
        if group.gmt_modifier == before {
            group.gmt_modifier = Some(now);
        }
        true
    }
    /// Applies an admin edit: creates the group when it does not exist. Returns the result.
    pub fn apply_group_edit(&self, edit: GroupEdit) -> Result<Group, SimError> {
        let mut state = self.lock();
        let k = key(&edit.cust_space_id, &edit.business_number, &edit.group_id);
        let mut group = state.groups.get(&k).cloned().unwrap_or_else(|| {
            Group::new(
                edit.cust_space_id.as_str(),
                edit.business_number.as_str(),
                edit.group_id.as_str(),
            )
        });
        edit.apply(&mut group);
        group
            .validate()
            .map_err(|detail| SimError::InvalidGroup { detail })?;
        group.gmt_modifier = Some(state.now().as_millisecond());
        state.groups.insert(k, group.clone());
        Ok(group)
    }
    /// Sets a group's `GroupStatus`; `false` when the group does not exist.
    pub fn set_group_status(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
        status: &str,
    ) -> bool {
        self.edit_group(cust_space_id, business_number, group_id, |g| {
            g.group_status = status.to_owned();
        })
    }
    /// Removes a group, returning it.
    pub fn remove_group(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
    ) -> Option<Group> {
        self.lock()
            .remove_group(&key(cust_space_id, business_number, group_id))
    }

    /// How long a group created by `AddChatGroup` stays `CREATING`.
    pub fn creation_delay(&self) -> Duration {
        self.lock().creation_delay
    }
    /// From now on a group created by `AddChatGroup` stays `CREATING` for `delay` by the
    /// simulator's clock (zero: `ACTIVE` at once). Groups already being created keep the
    /// delay they were created with.
    pub fn set_creation_delay(&self, delay: Duration) {
        self.lock().creation_delay = delay;
    }

    /// Accepts another key, or replaces the key with the same ID (rotation).
    pub fn add_access_key(&self, key: AccessKeySeed) {
        self.lock().keys.insert(key.id.clone(), key);
    }
    /// Stops accepting a key; `false` when it was not configured.
    pub fn remove_access_key(&self, id: &str) -> bool {
        self.lock().keys.remove(id).is_some()
    }

    /// The simulated STS's settings now.
    pub fn sts_config(&self) -> StsConfig {
        self.lock().sts.clone()
    }
    /// Replaces the simulated STS's settings (keys already issued stay valid).
    pub fn set_sts_config(&self, sts: StsConfig) -> Result<(), SimError> {
        sts.validate()
            .map_err(|detail| SimError::InvalidConfig { detail })?;
        self.lock().sts = sts;
        Ok(())
    }
    /// From now on STS accepts exactly these OIDC tokens (e.g. the rotated token only).
    pub fn accept_only_oidc_tokens(&self, tokens: &[&str]) {
        self.lock().sts.oidc_tokens = Some(tokens.iter().map(|t| Secret::new(*t)).collect());
    }
    /// From now on STS answers `token` with `AuthenticationFail.OIDCToken.Expired`.
    pub fn expire_oidc_token(&self, token: &str) {
        self.lock().sts.expire_oidc_token(token);
    }

    /// The simulator's current time.
    pub fn now(&self) -> Timestamp {
        self.lock().now()
    }
    /// Freezes the clock at `at`.
    pub fn set_time(&self, at: Timestamp) {
        self.lock().clock = Clock::Fixed(at);
    }
    /// Runs the clock `offset` away from the system clock.
    pub fn set_clock_offset(&self, offset: SignedDuration) {
        self.lock().clock = Clock::System { offset };
    }
    /// Back to the system clock.
    pub fn use_system_clock(&self) {
        self.set_clock_offset(SignedDuration::ZERO);
    }
}

fn key(cust_space_id: &str, business_number: &str, group_id: &str) -> (String, String, String) {
    (
        cust_space_id.to_owned(),
        business_number.to_owned(),
        group_id.to_owned(),
    )
}
