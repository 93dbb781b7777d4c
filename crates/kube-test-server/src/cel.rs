//! CEL evaluation of `x-kubernetes-validations` rules, as kube-apiserver 1.33 evaluates them
//! for custom resources, on top of `cel-interpreter` 0.10.
//!
//! Sources:
//! - `apiextensions-apiserver/pkg/apiserver/schema/cel/validation.go` (`validateExpressions`:
//!   the failure and runtime-error wording, `ruleMessageOrDefault`, `ruleErrorString`,
//!   `fieldErrorForReason`, `evalMessageExpression`);
//! - `apiserver/pkg/cel/common/values.go` (`UnstructuredToVal`: how a JSON value becomes a CEL
//!   value from its schema: `integer` as int, `number` as double, strings of format
//!   `date-time`/`date` as timestamps, `duration` as durations, `byte` as bytes);
//! - `apiserver/pkg/cel/types.go` (`WithTypeAndObjectMeta`: at the resource root `self` carries
//!   `apiVersion`, `kind` and `metadata.name`/`metadata.generateName` only);
//! - Go `time.ParseDuration` (what cel-go's `duration()` accepts).
//!
//! Differences from cel-go that are handled here: `duration()` is replaced by a port of Go's
//! `time.ParseDuration` (cel-interpreter's parser has no `µs`, accepts trailing garbage and
//! rounds fractions through floating point differently); `size()` of a string counts code points
//! as CEL specifies (cel-interpreter counts bytes); `matches()` is provided with Go RE2
//! semantics for `\d`, `\w`, `\s` (cel-interpreter is built without its `regex` feature).
//! Panics inside cel-interpreter (it has `todo!()`s for some constructs) are caught and reported
//! as a runtime error of the rule.
//!
//! Not emulated: the CEL type checker (a rule that would not compile on a real server may be
//! accepted here, and type errors surface at evaluation time as "no such overload"), cost
//! budgets, the Kubernetes CEL libraries (`isSorted`, `url`, `quantity`, `ip`, `cidr`, `format`,
//! `lowerAscii`, ... and optional types); rules calling an unknown function are refused when the
//! schema is loaded, so that a rule is never silently evaluated wrongly.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel_interpreter::extractors::This;
use cel_interpreter::objects::{Key, Map};
use cel_interpreter::{Context, ExecutionError, FunctionContext, Program, Value as Cel};
use serde_json::Value;

use super::schema::{Node, go_regex};

/// The `reason` of a rule: the kind of field error its failure produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// `FieldValueInvalid` (the default).
    Invalid,
    /// `FieldValueForbidden`.
    Forbidden,
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueDuplicate`.
    Duplicate,
}

/// One compiled `x-kubernetes-validations` rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    /// The rule as written.
    pub(crate) rule: String,
    /// The trimmed `message`, empty when none.
    message: String,
    /// The compiled `messageExpression`.
    message_expression: Option<Arc<Program>>,
    /// What kind of error a failure produces.
    pub(crate) reason: Reason,
    /// `fieldPath`, normalized to a relative path (`foo.bar`), empty when none.
    pub(crate) field_path: String,
    program: Arc<Program>,
    /// A transition rule: it reads `oldSelf`.
    pub(crate) uses_old_self: bool,
}

/// What evaluating a rule gave.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The rule held.
    Pass,
    /// The rule returned something other than `true`; the detail is the message to show.
    Fail(String),
    /// A runtime error (no such key, no such overload, ...), worded as the API server words it.
    Error(String),
}

/// Functions the rules may call, besides operators and macros: cel-interpreter's built-ins
/// and the ones this module adds or replaces.
const FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "matches",
    "duration",
    "timestamp",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

fn compile(source: &str, what: &str) -> Result<Program, String> {
    let program =
        Program::compile(source).map_err(|e| format!("{what} {source:?} does not compile: {e}"))?;
    let references = program.references();
    for function in references.functions() {
        let operator = (function.starts_with('_') || function.starts_with('@'))
            && !matches!(function, "_[?_]" | "_?._");
        let unary = matches!(function, "!_" | "-_");
        if !operator && !unary && !FUNCTIONS.contains(&function) {
            return Err(format!(
                "{what} {source:?} calls {function}, which the test server's CEL interpreter \
                 does not support"
            ));
        }
    }
    Ok(program)
}

impl Rule {
    /// Compiles one element of `x-kubernetes-validations`. `at` names the schema node in the
    /// error.
    pub(crate) fn compile(value: &Value, at: &str) -> Result<Rule, String> {
        let rule = value
            .get("rule")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}: x-kubernetes-validations entry without a rule"))?;
        if value
            .get("optionalOldSelf")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Err(format!(
                "{at}: optionalOldSelf (rule {rule:?}) is not supported by the test server"
            ));
        }
        let program = compile(rule, &format!("{at}: rule"))?;
        let uses_old_self = program.references().has_variable("oldSelf");
        let message_expression = match value.get("messageExpression").and_then(Value::as_str) {
            Some(source) => Some(Arc::new(compile(
                source,
                &format!("{at}: messageExpression"),
            )?)),
            None => None,
        };
        let reason = match value.get("reason").and_then(Value::as_str) {
            None | Some("FieldValueInvalid") => Reason::Invalid,
            Some("FieldValueForbidden") => Reason::Forbidden,
            Some("FieldValueRequired") => Reason::Required,
            Some("FieldValueDuplicate") => Reason::Duplicate,
            Some(other) => return Err(format!("{at}: unsupported reason {other:?}")),
        };
        let field_path = value
            .get("fieldPath")
            .and_then(Value::as_str)
            .map(normalize_field_path)
            .unwrap_or_default();
        Ok(Rule {
            rule: rule.to_owned(),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned(),
            message_expression,
            reason,
            field_path,
            program: Arc::new(program),
            uses_old_self,
        })
    }

    /// `ruleErrorString`: the message, or else the rule.
    fn error_string(&self) -> String {
        if self.message.is_empty() {
            self.rule.trim().to_owned()
        } else {
            self.message.clone()
        }
    }

    /// `ruleMessageOrDefault`.
    fn message_or_default(&self) -> String {
        if self.message.is_empty() {
            format!("failed rule: {}", self.error_string())
        } else {
            self.message.clone()
        }
    }

    /// Evaluates the rule with `self` (and `oldSelf` for transition rules).
    pub(crate) fn evaluate(&self, this: &Cel, old: Option<&Cel>) -> Outcome {
        let mut context = base_context();
        context.add_variable_from_value("self", this.clone());
        if let Some(old) = old {
            context.add_variable_from_value("oldSelf", old.clone());
        }
        match run(&self.program, &context) {
            Ok(Cel::Bool(true)) => Outcome::Pass,
            Ok(_) => Outcome::Fail(self.failure_detail(&context)),
            Err(RunError::Overload) => Outcome::Error(format!(
                "'no such overload': call arguments did not match a supported operator, \
                 function or macro signature for rule: {}",
                self.error_string()
            )),
            Err(RunError::Other(text)) => {
                Outcome::Error(format!("{text} evaluating rule: {}", self.error_string()))
            }
        }
    }

    /// The detail of a failure: the `messageExpression` result when it gives a usable string,
    /// else the message (`evalMessageExpression`; a runtime error of the expression falls back
    /// to the message).
    fn failure_detail(&self, context: &Context) -> String {
        let Some(expression) = &self.message_expression else {
            return self.message_or_default();
        };
        match run(expression, context) {
            Ok(Cel::String(text)) => {
                let trimmed = text.trim();
                if trimmed.contains('\n') || trimmed.contains('\r') {
                    "messageExpression should not contain line breaks".to_owned()
                } else if trimmed.is_empty() {
                    "messageExpression should evaluate to a non-empty string".to_owned()
                } else {
                    trimmed.to_owned()
                }
            }
            Ok(_) => "messageExpression failed to convert to string".to_owned(),
            Err(_) => self.message_or_default(),
        }
    }
}

/// A `fieldPath` such as `.foo.bar` or `['foo'].bar` as a relative field path (`foo.bar`).
fn normalize_field_path(path: &str) -> String {
    let mut parts = Vec::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']").unwrap_or(after.len());
            parts.push(after[..end].to_owned());
            rest = after.get(end + 2..).unwrap_or("");
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            parts.push(after[..end].to_owned());
            rest = &after[end..];
        } else if rest.starts_with('[') {
            let end = rest.find(']').map_or(rest.len(), |i| i + 1);
            if let Some(last) = parts.last_mut() {
                last.push_str(&rest[..end]);
            }
            rest = &rest[end..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            parts.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    parts.join(".")
}

enum RunError {
    Overload,
    Other(String),
}

/// Executes a program, turning cel-interpreter errors (and panics) into cel-go's wording.
fn run(program: &Program, context: &Context) -> Result<Cel, RunError> {
    match catch_unwind(AssertUnwindSafe(|| program.execute(context))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(match error {
            ExecutionError::NoSuchKey(key) => RunError::Other(format!("no such key: {key}")),
            ExecutionError::DivisionByZero(_) => RunError::Other("division by zero".into()),
            ExecutionError::RemainderByZero(_) => RunError::Other("modulus by zero".into()),
            ExecutionError::Overflow(..) => RunError::Other("integer overflow".into()),
            ExecutionError::UndeclaredReference(name) => {
                RunError::Other(format!("undeclared reference to '{name}'"))
            }
            ExecutionError::FunctionError { function, message } => {
                if message.starts_with("no such overload") {
                    RunError::Overload
                } else if function == "duration" {
                    RunError::Other(message)
                } else if function == "timestamp" {
                    RunError::Other(
                        "type conversion error from 'string' to 'google.protobuf.Timestamp'".into(),
                    )
                } else {
                    RunError::Other(format!("{function}: {message}"))
                }
            }
            _ => RunError::Overload,
        }),
        // cel-interpreter panics (todo!) on constructs it does not support, such as a
        // comprehension over a scalar; cel-go reports those as overload errors.
        Err(_) => Err(RunError::Overload),
    }
}

/// cel-interpreter's standard context with this module's replacements.
fn base_context() -> Context<'static> {
    let mut context = Context::default();
    context.add_function("duration", cel_duration);
    context.add_function("size", cel_size);
    context.add_function("matches", cel_matches);
    context
}

/// `duration(string)`: Go's `time.ParseDuration`, as cel-go uses it.
fn cel_duration(ftx: &FunctionContext, value: Cel) -> Result<Cel, ExecutionError> {
    match value {
        Cel::Duration(d) => Ok(Cel::Duration(d)),
        Cel::String(text) => match parse_go_duration(&text) {
            Ok(nanos) => Ok(Cel::Duration(chrono::Duration::nanoseconds(nanos))),
            Err(_) => {
                Err(ftx.error("type conversion error from 'string' to 'google.protobuf.Duration'"))
            }
        },
        _ => Err(ftx.error("no such overload")),
    }
}

/// `size()`: code points for strings, as the CEL specification says.
fn cel_size(ftx: &FunctionContext, This(this): This<Cel>) -> Result<i64, ExecutionError> {
    let size = match this {
        Cel::String(text) => text.chars().count(),
        Cel::Bytes(bytes) => bytes.len(),
        Cel::List(items) => items.len(),
        Cel::Map(map) => map.map.len(),
        _ => return Err(ftx.error("no such overload")),
    };
    i64::try_from(size).map_err(|_| ftx.error("integer overflow"))
}

/// `string.matches(re)`: an unanchored RE2 search.
fn cel_matches(
    ftx: &FunctionContext,
    This(this): This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<bool, ExecutionError> {
    let regex = go_regex(&pattern).map_err(|e| ftx.error(format!("invalid regex: {e}")))?;
    Ok(regex.is_match(&this))
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units `ns`, `us`, `µs`,
/// `μs`, `ms`, `s`, `m`, `h`; the result in nanoseconds.
pub(crate) fn parse_go_duration(text: &str) -> Result<i64, String> {
    const LIMIT: u64 = 1 << 63;
    let invalid = || format!("time: invalid duration {}", super::errors::go_quote(text));
    let mut s = text;
    let mut negative = false;
    if let Some(first) = s.chars().next()
        && (first == '-' || first == '+')
    {
        negative = first == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let bytes = s.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part.
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut value: u64 = 0;
        for b in &bytes[..digits] {
            if value > LIMIT / 10 {
                return Err(invalid());
            }
            value = value * 10 + u64::from(b - b'0');
            if value > LIMIT {
                return Err(invalid());
            }
        }
        let pre = digits > 0;
        s = &s[digits..];
        // The fraction.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let Some(rest) = s.strip_prefix('.') {
            let fraction_digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for b in rest[..fraction_digits].bytes() {
                if overflow {
                    continue;
                }
                if fraction > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = fraction * 10 + u64::from(b - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                fraction = next;
                scale *= 10.0;
            }
            post = fraction_digits > 0;
            s = &rest[fraction_digits..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // The unit.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                super::errors::go_quote(text)
            ));
        }
        let unit_name = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_name {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    super::errors::go_quote(unit_name),
                    super::errors::go_quote(text)
                ));
            }
        };
        if value > LIMIT / unit {
            return Err(invalid());
        }
        value *= unit;
        if fraction > 0 {
            // Go converts through float64 here too.
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // total <= 2^63, so the negation fits.
        return Ok((total as i128).wrapping_neg() as i64);
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The CEL value of `value`, typed by its schema node (`UnstructuredToVal`). At the root of a
/// resource (and of an embedded resource) `metadata` is narrowed to `name` and `generateName`.
pub(crate) fn to_cel(node: Option<&Node>, value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => {
            let want_int = node.is_some_and(|n| n.ty == "integer" || n.int_or_string);
            let want_float = node.is_some_and(|n| n.ty == "number");
            if want_float {
                Cel::Float(n.as_f64().unwrap_or_default())
            } else if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                let f = n.as_f64().unwrap_or_default();
                if want_int && f.fract() == 0.0 && f.abs() < 9.2e18 {
                    Cel::Int(f as i64)
                } else {
                    Cel::Float(f)
                }
            }
        }
        Value::String(text) => string_to_cel(node, text),
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            Cel::List(Arc::new(
                items.iter().map(|item| to_cel(item_node, item)).collect(),
            ))
        }
        Value::Object(map) => {
            let resource = node.is_some_and(|n| n.embedded);
            let mut out = HashMap::with_capacity(map.len());
            for (key, child) in map {
                let child_node = node.and_then(|n| n.child(key));
                let converted = if resource && key == "metadata" {
                    object_meta_to_cel(child)
                } else {
                    to_cel(child_node, child)
                };
                out.insert(Key::String(Arc::new(key.clone())), converted);
            }
            Cel::Map(Map { map: Arc::new(out) })
        }
    }
}

/// `metadata` as CEL sees it at a resource root: only `name` and `generateName`.
fn object_meta_to_cel(meta: &Value) -> Cel {
    let mut out = HashMap::new();
    if let Value::Object(map) = meta {
        for key in ["name", "generateName"] {
            if let Some(Value::String(text)) = map.get(key) {
                out.insert(
                    Key::String(Arc::new(key.to_owned())),
                    Cel::String(Arc::new(text.clone())),
                );
            }
        }
    }
    Cel::Map(Map { map: Arc::new(out) })
}

fn string_to_cel(node: Option<&Node>, text: &str) -> Cel {
    let format = node.map_or("", |n| n.format.as_str());
    let as_string = || Cel::String(Arc::new(text.to_owned()));
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(text)
            .map(Cel::Timestamp)
            .unwrap_or_else(|_| as_string()),
        "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Cel::Timestamp(t.and_utc().fixed_offset()))
            .unwrap_or_else(as_string),
        "duration" => parse_go_duration(text)
            .map(|n| Cel::Duration(chrono::Duration::nanoseconds(n)))
            .unwrap_or_else(|_| as_string()),
        "byte" => super::schema::decode_base64(text)
            .map(|b| Cel::Bytes(Arc::new(b)))
            .unwrap_or_else(as_string),
        _ => as_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(value: Value) -> Rule {
        Rule::compile(&value, "test").expect("the rule compiles")
    }

    #[test]
    fn go_durations_parse_as_go_parses_them() {
        let cases = [
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("500ms", 500_000_000),
            ("90\u{b5}s", 90_000),
            ("90\u{3bc}s", 90_000),
            ("90us", 90_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("-1m", -60_000_000_000),
            ("0", 0),
            ("1h1m1.5s", 3_661_500_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
        }
        assert_eq!(
            parse_go_duration("1"),
            Err("time: missing unit in duration \"1\"".to_owned())
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".to_owned())
        );
        assert_eq!(
            parse_go_duration("1m garbage"),
            Err("time: unknown unit \"m garbage\" in duration \"1m garbage\"".to_owned())
        );
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration(".s").is_err());
        assert!(parse_go_duration("3000000h").is_err());
    }

    #[test]
    fn duration_comparison_uses_the_go_parser() {
        let r = rule(json!({"rule": "duration(self) >= duration('1m')"}));
        let eval = |s: &str| r.evaluate(&to_cel(None, &json!(s)), None);
        assert!(matches!(eval("90\u{b5}s"), Outcome::Fail(_)));
        assert!(matches!(eval("1.5h"), Outcome::Pass));
        assert!(matches!(eval("60s"), Outcome::Pass));
        match eval("1mfoo") {
            Outcome::Error(text) => assert_eq!(
                text,
                "type conversion error from 'string' to 'google.protobuf.Duration' evaluating \
                 rule: duration(self) >= duration('1m')"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failures_carry_the_message_or_the_rule() {
        let with_message = rule(json!({"rule": "self.size() < 3", "message": " too long "}));
        let this = to_cel(None, &json!("abcd"));
        assert!(matches!(with_message.evaluate(&this, None), Outcome::Fail(m) if m == "too long"));
        let without = rule(json!({"rule": "self.size() < 3"}));
        assert!(
            matches!(without.evaluate(&this, None), Outcome::Fail(m) if m == "failed rule: self.size() < 3")
        );
    }

    #[test]
    fn message_expressions_give_the_detail() {
        let r = rule(json!({
            "rule": "self.size() < 3",
            "message": "fallback",
            "messageExpression": "'got ' + self",
        }));
        assert!(matches!(
            r.evaluate(&to_cel(None, &json!("abcd")), None),
            Outcome::Fail(m) if m == "got abcd"
        ));
        let empty = rule(json!({"rule": "false", "messageExpression": "'  '"}));
        assert!(matches!(
            empty.evaluate(&Cel::Null, None),
            Outcome::Fail(m) if m == "messageExpression should evaluate to a non-empty string"
        ));
    }

    #[test]
    fn string_size_counts_code_points() {
        let r = rule(json!({"rule": "self.size() == 2 && size(self) == 2"}));
        assert!(matches!(
            r.evaluate(&to_cel(None, &json!("\u{e9}\u{e9}")), None),
            Outcome::Pass
        ));
    }

    #[test]
    fn matches_uses_ascii_perl_classes() {
        let r = rule(json!({"rule": "self.matches('^\\\\d+$')"}));
        assert!(matches!(
            r.evaluate(&to_cel(None, &json!("123")), None),
            Outcome::Pass
        ));
        // Arabic-Indic digits are \d for Rust's Unicode classes, not for RE2.
        assert!(matches!(
            r.evaluate(&to_cel(None, &json!("\u{663}")), None),
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn runtime_errors_are_worded_as_the_api_server_words_them() {
        let missing = rule(json!({"rule": "self.foo == 1", "message": "foo must be 1"}));
        assert!(matches!(
            missing.evaluate(&to_cel(None, &json!({})), None),
            Outcome::Error(m) if m == "no such key: foo evaluating rule: foo must be 1"
        ));
        let overload = rule(json!({"rule": "self + 1 == 2"}));
        assert!(matches!(
            overload.evaluate(&to_cel(None, &json!("a")), None),
            Outcome::Error(m) if m == "'no such overload': call arguments did not match a \
                supported operator, function or macro signature for rule: self + 1 == 2"
        ));
    }

    #[test]
    fn unsupported_functions_are_refused_at_compile_time() {
        let error = Rule::compile(&json!({"rule": "self.isSorted()"}), "spec.x").unwrap_err();
        assert_eq!(
            error,
            "spec.x: rule \"self.isSorted()\" calls isSorted, which the test server's CEL \
             interpreter does not support"
        );
    }

    #[test]
    fn macros_and_operators_evaluate() {
        let r = rule(
            json!({"rule": "self.all(x, x > 0) && self.exists(x, x == 2) \
            && self.exists_one(x, x == 3) && self.map(x, x * 2)[2] == 6 \
            && self.filter(x, x > 1).size() == 2 && 2 in self && (self[0] == 1 ? true : false)"}),
        );
        assert!(matches!(
            r.evaluate(&to_cel(None, &json!([1, 2, 3])), None),
            Outcome::Pass
        ));
        let has = rule(json!({"rule": "has(self.a) && !has(self.b)"}));
        assert!(matches!(
            has.evaluate(&to_cel(None, &json!({"a": 1})), None),
            Outcome::Pass
        ));
    }

    #[test]
    fn a_bad_timestamp_is_a_conversion_error() {
        let r = rule(json!({"rule": "timestamp(self) > timestamp('2020-01-01T00:00:00Z')"}));
        assert!(matches!(
            r.evaluate(&to_cel(None, &json!("yesterday")), None),
            Outcome::Error(m) if m == "type conversion error from 'string' to \
                'google.protobuf.Timestamp' evaluating rule: timestamp(self) > \
                timestamp('2020-01-01T00:00:00Z')"
        ));
    }

    #[test]
    fn transition_rules_are_recognised() {
        assert!(rule(json!({"rule": "self == oldSelf"})).uses_old_self);
        assert!(!rule(json!({"rule": "self == 'a'"})).uses_old_self);
    }

    #[test]
    fn field_paths_are_normalized() {
        assert_eq!(normalize_field_path(".foo.bar"), "foo.bar");
        assert_eq!(normalize_field_path("['foo.x'].bar"), "foo.x.bar");
        assert_eq!(normalize_field_path(".items[0]"), "items[0]");
    }
}
