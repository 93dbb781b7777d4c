//! Fault injection: what can go wrong with a call, per action, and the seeded decision of what
//! does go wrong.
//!
//! Faults are decided after signature verification, before the operation runs (the real
//! gateway throttles before any business logic). For each call of an action the simulator first
//! takes the next entry of that action's [`ActionFaults::script`], if any; otherwise it draws
//! three numbers from the action's own random stream (seeded from the simulator's seed and the
//! action name) and compares them with `dropRate`, `throttleRate` and `serverErrorRate`, in that
//! order, and when `lostAnswerRate` is above zero a fourth, compared with it. The same seed and
//! the same sequence of calls of an action therefore give the same outcomes, whatever other
//! actions are called in between (and a configuration without `lostAnswerRate` draws exactly
//! the numbers it drew before the rate existed).
//!
//! A dropped connection (`dropRate`, [`Fault::Drop`]) is decided before the operation, so the
//! call changes nothing. A lost answer (`lostAnswerRate`, [`Fault::LostAnswer`]) is the other
//! half of an unknown outcome: the operation runs (a group is created, a link added, a group
//! deleted, or a business error answered), and then the connection is closed instead of the
//! answer being written. The client sees the same dropped connection in both cases; only the
//! simulator's state tells them apart. The request log records a lost answer with `httpStatus`
//! and `code` `null`, as for any call whose client got no answer, and the `Code` of the answer
//! that was not sent in `lostAnswerCode`; the counters count it under `lostAnswers`, not
//! `dropped`.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::protocol::codes;

/// Default `Limit` reported in the throttling header.
pub const DEFAULT_THROTTLE_LIMIT: u32 = 20;
/// Default `TimeLeft` (milliseconds) reported in the throttling header.
pub const DEFAULT_THROTTLE_TIME_LEFT_MS: u64 = 1_000;

/// The faults of one action. All rates are probabilities in `0.0..=1.0`; the default injects
/// nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ActionFaults {
    /// Share of calls answered with `Throttling.User` (HTTP 400) and an
    /// `x-ratelimit-user-api` header.
    pub throttle_rate: f64,
    /// `Limit` in the throttling header.
    pub throttle_limit: u32,
    /// `TimeLeft` in the throttling header, milliseconds.
    pub throttle_time_left_ms: u64,
    /// Share of calls answered with a server error.
    pub server_error_rate: f64,
    /// Which server error `serverErrorRate` produces.
    pub server_error: ServerError,
    /// Share of calls whose connection is closed without any response, before the operation
    /// runs (the call changes nothing).
    pub drop_rate: f64,
    /// Share of calls that run and whose connection is then closed instead of the answer being
    /// written (the call takes effect; the client cannot know it did).
    pub lost_answer_rate: f64,
    /// Delay added to every call of the action, milliseconds.
    pub latency_ms: u64,
    /// Outcomes forced for the next calls, one per call, in order, before any random draw.
    pub script: VecDeque<Fault>,
}

impl Default for ActionFaults {
    fn default() -> Self {
        ActionFaults {
            throttle_rate: 0.0,
            throttle_limit: DEFAULT_THROTTLE_LIMIT,
            throttle_time_left_ms: DEFAULT_THROTTLE_TIME_LEFT_MS,
            server_error_rate: 0.0,
            server_error: ServerError::ServiceUnavailable,
            drop_rate: 0.0,
            lost_answer_rate: 0.0,
            latency_ms: 0,
            script: VecDeque::new(),
        }
    }
}

impl ActionFaults {
    /// No faults.
    pub fn none() -> Self {
        ActionFaults::default()
    }
    /// Throttles `rate` of the calls.
    pub fn throttle_rate(mut self, rate: f64) -> Self {
        self.throttle_rate = rate;
        self
    }
    /// Answers `rate` of the calls with `kind`.
    pub fn server_error_rate(mut self, rate: f64, kind: ServerError) -> Self {
        self.server_error_rate = rate;
        self.server_error = kind;
        self
    }
    /// Drops the connection of `rate` of the calls.
    pub fn drop_rate(mut self, rate: f64) -> Self {
        self.drop_rate = rate;
        self
    }
    /// Runs `rate` of the calls and then drops their connection instead of answering.
    pub fn lost_answer_rate(mut self, rate: f64) -> Self {
        self.lost_answer_rate = rate;
        self
    }
    /// Delays every call by `ms` milliseconds.
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = ms;
        self
    }
    /// Sets the throttling header's `Limit` and `TimeLeft` (milliseconds).
    pub fn throttle_header(mut self, limit: u32, time_left_ms: u64) -> Self {
        self.throttle_limit = limit;
        self.throttle_time_left_ms = time_left_ms;
        self
    }
    /// Appends `fault` to the script: the next unscripted call gets it.
    pub fn then(mut self, fault: Fault) -> Self {
        self.script.push_back(fault);
        self
    }

    /// Checks that every rate is a probability. The error names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttleRate", self.throttle_rate),
            ("serverErrorRate", self.server_error_rate),
            ("dropRate", self.drop_rate),
            ("lostAnswerRate", self.lost_answer_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0.0 and 1.0, got {rate}"));
            }
        }
        for fault in &self.script {
            fault.validate()?;
        }
        Ok(())
    }
}

/// The server error a `serverErrorRate` hit produces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerError {
    /// HTTP 503 `ServiceUnavailable`.
    #[default]
    ServiceUnavailable,
    /// HTTP 500 `InternalError`.
    InternalError,
}

impl ServerError {
    /// HTTP status of the answer.
    pub fn http_status(self) -> u16 {
        match self {
            ServerError::ServiceUnavailable => 503,
            ServerError::InternalError => 500,
        }
    }
    /// `Code` of the answer.
    pub fn code(self) -> &'static str {
        match self {
            ServerError::ServiceUnavailable => codes::SERVICE_UNAVAILABLE,
            ServerError::InternalError => codes::INTERNAL_ERROR,
        }
    }
}

/// One scripted outcome (JSON: `{"kind": "throttle"}`, `{"kind": "gateway", "httpStatus": 403,
/// "code": "Forbidden.RAM", "message": "..."}`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Fault {
    /// `Throttling.User` with the action's throttling header.
    Throttle,
    ServerError {
        /// Which one.
        #[serde(default)]
        error: ServerError,
    },
    /// Close the connection without a response, before the operation runs.
    Drop,
    /// Run the operation, then close the connection instead of writing its answer.
    LostAnswer,
    /// Any gateway error: HTTP `http_status` with the gateway envelope.
    Gateway {
        /// HTTP status, 400..=599.
        http_status: u16,
        code: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// Any business error: HTTP 200 with `Code` and `Success: false`.
    Business {
        code: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// Let the call through (useful between scripted failures).
    Pass,
}

impl Fault {
    fn validate(&self) -> Result<(), String> {
        match self {
            Fault::Gateway {
                http_status, code, ..
            } => {
                if !(400..=599).contains(http_status) {
                    return Err(format!(
                        "a gateway fault's httpStatus must be 400..=599, got {http_status}"
                    ));
                }
                if code.is_empty() {
                    return Err("a gateway fault needs a non-empty code".to_owned());
                }
                Ok(())
            }
            Fault::Business { code, .. } if code.is_empty() || code == codes::OK => {
                Err("a business fault needs a code other than OK".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// A response forced for every call naming a `GroupId` (configured with
/// `forcedCodes: {GROUP_ID: CODE}` or `{GROUP_ID: {code, httpStatus, message}}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ForcedErrorRepr")]
pub struct ForcedError {
    pub code: String,
    /// HTTP status: 200 for a business error (default), 4xx/5xx for a gateway error.
    #[serde(rename = "httpStatus")]
    pub http_status: u16,
    /// `Message`; a default names the simulator.
    pub message: Option<String>,
}

impl ForcedError {
    /// A business error (HTTP 200) with `code`.
    pub fn business(code: impl Into<String>) -> Self {
        ForcedError {
            code: code.into(),
            http_status: 200,
            message: None,
        }
    }
    /// A gateway error with `http_status` and `code`.
    pub fn gateway(http_status: u16, code: impl Into<String>) -> Self {
        ForcedError {
            code: code.into(),
            http_status,
            message: None,
        }
    }
    /// Sets the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
    /// Checks the status and code. The error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.code.is_empty() {
            return Err("a forced code must not be empty".to_owned());
        }
        if self.http_status != 200 && !(400..=599).contains(&self.http_status) {
            return Err(format!(
                "a forced code's httpStatus must be 200 or 400..=599, got {}",
                self.http_status
            ));
        }
        Ok(())
    }
    /// As a scripted fault.
    pub(crate) fn to_fault(&self) -> Fault {
        if self.http_status == 200 {
            Fault::Business {
                code: self.code.clone(),
                message: self.message.clone(),
            }
        } else {
            Fault::Gateway {
                http_status: self.http_status,
                code: self.code.clone(),
                message: self.message.clone(),
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ForcedErrorRepr {
    Code(String),
    #[serde(rename_all = "camelCase")]
    Full {
        code: String,
        #[serde(default = "default_forced_status")]
        http_status: u16,
        #[serde(default)]
        message: Option<String>,
    },
}

fn default_forced_status() -> u16 {
    200
}

impl From<ForcedErrorRepr> for ForcedError {
    fn from(repr: ForcedErrorRepr) -> Self {
        match repr {
            ForcedErrorRepr::Code(code) => ForcedError::business(code),
            ForcedErrorRepr::Full {
                code,
                http_status,
                message,
            } => ForcedError {
                code,
                http_status,
                message,
            },
        }
    }
}

/// A random stream per action, derived from the simulator's seed and the action name.
pub(crate) fn action_rng(seed: u64, action: &str) -> StdRng {
    // FNV-1a: stable across Rust versions and platforms, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in action.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    StdRng::seed_from_u64(seed ^ hash)
}

/// The parts of an action's faults that shape an answer, copied out of the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultTiming {
    /// Delay before answering, milliseconds.
    pub latency_ms: u64,
    /// `Limit` of the throttling header.
    pub throttle_limit: u32,
    /// `TimeLeft` of the throttling header, milliseconds.
    pub throttle_time_left_ms: u64,
}

impl Default for FaultTiming {
    fn default() -> Self {
        FaultTiming {
            latency_ms: 0,
            throttle_limit: DEFAULT_THROTTLE_LIMIT,
            throttle_time_left_ms: DEFAULT_THROTTLE_TIME_LEFT_MS,
        }
    }
}

impl ActionFaults {
    pub(crate) fn timing(&self) -> FaultTiming {
        FaultTiming {
            latency_ms: self.latency_ms,
            throttle_limit: self.throttle_limit,
            throttle_time_left_ms: self.throttle_time_left_ms,
        }
    }
}

/// What happens to one call, before the operation runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Run the operation.
    Proceed,
    /// Run the operation, then close the connection without its answer.
    LoseAnswer,
    Fault(Fault),
}

/// Decides the fate of the next call of an action: the next scripted fault, else three draws
/// (four when `lostAnswerRate` is above zero).
pub(crate) fn decide(faults: &mut ActionFaults, rng: &mut StdRng) -> Decision {
    if let Some(fault) = faults.script.pop_front() {
        return match fault {
            Fault::Pass => Decision::Proceed,
            Fault::LostAnswer => Decision::LoseAnswer,
            other => Decision::Fault(other),
        };
    }
    let drop_draw: f64 = rng.random();
    let throttle_draw: f64 = rng.random();
    let error_draw: f64 = rng.random();
    // Drawn only when the rate is set, so that configurations without it keep their sequences.
    let lost_draw: Option<f64> = (faults.lost_answer_rate > 0.0).then(|| rng.random());
    if drop_draw < faults.drop_rate {
        Decision::Fault(Fault::Drop)
    } else if throttle_draw < faults.throttle_rate {
        Decision::Fault(Fault::Throttle)
    } else if error_draw < faults.server_error_rate {
        Decision::Fault(Fault::ServerError {
            error: faults.server_error,
        })
    } else if lost_draw.is_some_and(|draw| draw < faults.lost_answer_rate) {
        Decision::LoseAnswer
    } else {
        Decision::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_decisions_other_seed_differs() {
        let mut faults = ActionFaults::none()
            .throttle_rate(0.3)
            .server_error_rate(0.3, ServerError::InternalError);
        let run = |seed: u64, faults: &mut ActionFaults| {
            let mut rng = action_rng(seed, "UpdateChatGroup");
            (0..64)
                .map(|_| decide(faults, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = run(7, &mut faults);
        let b = run(7, &mut faults);
        let c = run(8, &mut faults);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.contains(&Decision::Proceed));
        assert!(a.contains(&Decision::Fault(Fault::Throttle)));
    }

    #[test]
    fn script_comes_first_then_rates() {
        let mut faults = ActionFaults::none()
            .then(Fault::Drop)
            .then(Fault::Pass)
            .throttle_rate(1.0);
        let mut rng = action_rng(1, "ListChatGroup");
        assert_eq!(decide(&mut faults, &mut rng), Decision::Fault(Fault::Drop));
        assert_eq!(decide(&mut faults, &mut rng), Decision::Proceed);
        assert_eq!(
            decide(&mut faults, &mut rng),
            Decision::Fault(Fault::Throttle)
        );
    }

    #[test]
    fn lost_answers_are_drawn_from_the_seed_after_the_other_rates() {
        let mut faults = ActionFaults::none().lost_answer_rate(0.5);
        let run = |seed: u64, faults: &mut ActionFaults| {
            let mut rng = action_rng(seed, "AddChatGroup");
            (0..64)
                .map(|_| decide(faults, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = run(11, &mut faults);
        assert_eq!(a, run(11, &mut faults));
        assert_ne!(a, run(12, &mut faults));
        assert!(a.contains(&Decision::LoseAnswer), "{a:?}");
        assert!(a.contains(&Decision::Proceed), "{a:?}");

        let mut rng = action_rng(1, "AddChatGroup");
        let mut always = ActionFaults::none().lost_answer_rate(1.0);
        assert!((0..16).all(|_| decide(&mut always, &mut rng) == Decision::LoseAnswer));
        // A call decided before the operation never gets to run, so it has no answer to lose.
        let mut both = ActionFaults::none().lost_answer_rate(1.0).drop_rate(1.0);
        assert_eq!(decide(&mut both, &mut rng), Decision::Fault(Fault::Drop));
        let mut throttled = ActionFaults::none()
            .lost_answer_rate(1.0)
            .throttle_rate(1.0);
        assert_eq!(
            decide(&mut throttled, &mut rng),
            Decision::Fault(Fault::Throttle)
        );
    }

    #[test]
    fn without_lost_answers_each_call_draws_three_numbers() {
        // The stream a configuration without `lostAnswerRate` sees: three draws per call, as
        // before the rate existed.
        let mut faults = ActionFaults::none()
            .throttle_rate(0.3)
            .server_error_rate(0.3, ServerError::InternalError)
            .drop_rate(0.2);
        let mut rng = action_rng(5, "ListChatGroup");
        let mut mirror = action_rng(5, "ListChatGroup");
        for call in 0..64 {
            let (d, t, e): (f64, f64, f64) = (mirror.random(), mirror.random(), mirror.random());
            let expected = if d < 0.2 {
                Decision::Fault(Fault::Drop)
            } else if t < 0.3 {
                Decision::Fault(Fault::Throttle)
            } else if e < 0.3 {
                Decision::Fault(Fault::ServerError {
                    error: ServerError::InternalError,
                })
            } else {
                Decision::Proceed
            };
            assert_eq!(decide(&mut faults, &mut rng), expected, "call {call}");
        }
    }

    #[test]
    fn a_scripted_lost_answer_runs_the_call() {
        let mut faults = ActionFaults::none()
            .then(Fault::LostAnswer)
            .then(Fault::Drop);
        let mut rng = action_rng(1, "DeleteChatGroup");
        assert_eq!(decide(&mut faults, &mut rng), Decision::LoseAnswer);
        assert_eq!(decide(&mut faults, &mut rng), Decision::Fault(Fault::Drop));
        assert_eq!(decide(&mut faults, &mut rng), Decision::Proceed);
    }

    #[test]
    fn lost_answers_read_from_json() {
        let faults: ActionFaults =
            serde_json::from_str(r#"{"lostAnswerRate":0.25,"script":[{"kind":"lostAnswer"}]}"#)
                .expect("parses");
        assert_eq!(
            faults,
            ActionFaults::none()
                .lost_answer_rate(0.25)
                .then(Fault::LostAnswer)
        );
        let json = serde_json::to_string(&faults).expect("serialises");
        assert!(json.contains("\"lostAnswerRate\":0.25"), "{json}");
    }

    #[test]
    fn rates_are_validated() {
        for bad in [-0.1, 1.01, f64::NAN] {
            let err = ActionFaults::none()
                .lost_answer_rate(bad)
                .validate()
                .expect_err("out of range");
            assert!(err.contains("lostAnswerRate"), "{err}");
        }
        assert!(
            ActionFaults::none()
                .lost_answer_rate(1.0)
                .validate()
                .is_ok()
        );
        let err = ActionFaults::none()
            .drop_rate(1.5)
            .validate()
            .expect_err("out of range");
        assert!(err.contains("dropRate"), "{err}");
        assert!(ActionFaults::none().throttle_rate(1.0).validate().is_ok());
    }

    #[test]
    fn forced_error_reads_short_and_long_forms() {
        let short: ForcedError = serde_json::from_str("\"Forbidden.RAM\"").expect("short");
        assert_eq!(short, ForcedError::business("Forbidden.RAM"));
        let long: ForcedError =
            serde_json::from_str(r#"{"code":"Forbidden.RAM","httpStatus":403}"#).expect("long");
        assert_eq!(long, ForcedError::gateway(403, "Forbidden.RAM"));
    }

    #[test]
    fn faults_round_trip_as_json() {
        let faults = ActionFaults::none().latency_ms(5).then(Fault::Gateway {
            http_status: 403,
            code: "Forbidden.RAM".into(),
            message: None,
        });
        let json = serde_json::to_string(&faults).expect("serialises");
        assert!(json.contains("\"kind\":\"gateway\""), "{json}");
        assert!(json.contains("\"httpStatus\":403"), "{json}");
        let back: ActionFaults = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, faults);
    }
}
