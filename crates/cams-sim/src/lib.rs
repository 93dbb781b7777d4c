//! The CAMS simulator: a local stand-in for Alibaba Cloud's CAMS API that every test, the demo
//! and the benchmarks run against.
//!
//! It speaks the RPC protocol (`GET`/`POST /`, parameters in the query and/or a form body, a JSON
//! envelope, gateway errors as HTTP 4xx/5xx, business errors as HTTP 200 with `Code != "OK"`),
//! verifies V1 and V3 signatures with its own code ([`verify`]), and serves `AddChatGroup`,
//! `UpdateChatGroup`, `ListChatGroup`, `DeleteChatGroup`, `AddChatGroupInviteLink` and
//! `DeleteChatGroupInviteLink` on groups held in memory, plus STS `AssumeRoleWithOIDC`
//! ([`sts`]) for the operator's RRSA identity. Faults (throttling, server errors, latency,
//! dropped connections, answers lost after the call took effect, forced codes) are injected
//! per action, deterministically from a seed ([`faults`]). Every call is counted and logged
//! without secrets.
//!
//! The group lifecycle, and the simulator's assumptions where CAMS documents nothing:
//!
//! - `AddChatGroup` answers a `UniqueCode` and no `GroupId`: the group (with a `GroupId` the
//!   simulator generates) is listed `CREATING` until the creation delay
//!   ([`SimulatorBuilder::creation_delay`], `creationDelayMs` in the config,
//!   `/_sim/creation-delay`) has passed by the simulator's clock, then `ACTIVE`. Nothing runs
//!   in the background: the change is made when the state is next read (a call,
//!   [`SimHandle::groups`], the admin endpoints), so a test with a fixed clock sees it exactly
//!   when it moves the clock ([`SimHandle::set_time`]). A delay of zero, the default, creates
//!   it `ACTIVE` at once.
//! - While a group is `CREATING`, `UpdateChatGroup`, `DeleteChatGroup` and the invite-link
//!   actions naming it answer the business error `InvalidStatus.GroupCreating` (HTTP 200).
//!   The real answer is undocumented; refusing is the conservative guess, since WhatsApp has
//!   no group to change until the creation is done: a client that waits for `ACTIVE` works
//!   whether CAMS refuses or accepts, while one that relies on acceptance would break on a
//!   CAMS that refuses. The code name is the simulator's own.
//! - `AddChatGroupInviteLink` gives the group a new link (`https://chat.whatsapp.com/` and 22
//!   letters and digits, drawn from the seed), revoking the previous one as a WhatsApp link
//!   reset does, and answers it as `InviteLink`; `ListChatGroup` lists it.
//!   `DeleteChatGroupInviteLink` removes it, and answers `OK` for a group without a link too,
//!   so that a retried call (its first answer lost) does not fail.
//! - A deleted group is gone; any action naming a missing group answers
//!   `InvalidParameter.GroupNotExist` (HTTP 200).
//!
//! In-process use (tests):
//!
//! ```no_run
//! # async fn example() -> Result<(), cams_sim::SimError> {
//! use cams_sim::{ActionFaults, Group, Simulator};
//!
//! let sim = Simulator::builder()
//!     .access_key("testid", "testsecret")
//!     .group(Group::new("cams-test", "8613800001234", "EA303TEST").subject("Team chat"))
//!     .faults("UpdateChatGroup", ActionFaults::none().throttle_rate(0.5))
//!     .seed(42)
//!     .start()
//!     .await?;
//! let url = sim.url(); // http://127.0.0.1:PORT/
//! // ... call it ...
//! assert_eq!(sim.call_count("UpdateChatGroup"), 0);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! As a process (the operator binary's `sim` command): `cams-operator sim --addr 127.0.0.1:8787 --config sim.yaml`, with admin
//! endpoints under `/_sim/` (see the README).

//! The crate has no dependency on the operator: its protocol facts ([`protocol`]) and its
//! signature checks ([`verify`]) are written on their own, so that it checks the operator's
//! client rather than agreeing with it.
//!
//! Modules, from the leaves up: [`protocol`] (versions, actions, codes, limits), `secret`,
//! `error`, `group`, `params` (a request's parameters and an operation's error), [`faults`],
//! [`config`], [`verify`], `state` (the simulator's memory), `api` (the CAMS operations) and
//! [`sts`] (`AssumeRoleWithOIDC`), `handle` (steering from a test), `server` (HTTP and the admin
//! endpoints) and `builder` (starting one).

mod api;
mod builder;
pub mod config;
mod error;
pub mod faults;
mod group;
mod handle;
mod params;
pub mod protocol;
mod secret;
mod server;
mod state;
pub mod sts;
pub mod verify;

pub use builder::{RunningSim, Simulator, SimulatorBuilder};
pub use config::{AccessKeySeed, DEFAULT_LOG_CAPACITY, SimConfig, StsConfig};
pub use error::SimError;
pub use faults::{ActionFaults, Fault, ForcedError, ServerError};
pub use group::{Group, GroupEdit};
pub use handle::SimHandle;
pub use protocol::{
    ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_ASSUME_ROLE_WITH_OIDC,
    ACTION_DELETE_CHAT_GROUP, ACTION_DELETE_CHAT_GROUP_INVITE_LINK, GROUP_STATUS_ACTIVE,
    GROUP_STATUS_CREATING, MAX_PAGE_SIZE, STS_API_VERSION, codes,
};
pub use secret::Secret;
pub use server::{ADMIN_PREFIX, RATELIMIT_HEADER};
pub use state::{ActionStats, Clock, LoggedRequest, Stats};
pub use verify::SignatureVersion;
