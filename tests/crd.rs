//! The ChatGroup CRD and the examples: the committed CRD is current, it is a valid
//! `apiextensions.k8s.io/v1` object (checked by `kubernetes-validate`), every CEL rule in it
//! compiles and does its job (evaluated by `cel-interpreter`), and every example is a valid
//! manifest that the operator accepts. `docs/status.md` documents every condition and reason.
//!
//! `kubernetes-validate` and the JSON-schema check run from `.venv`, installed by
//! `scripts/install-test-tools` (the test command runs it first).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use cams_operator::crd::{ChatGroup, crd_yaml};
use cams_operator::reconcile::credentials::{self, IdentityNamespaces};
use cams_operator::reconcile::validate::validate;
use serde_json::Value;

/// Kubernetes version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.33";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_tool(name: &str) -> PathBuf {
    let path = root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-tools (the test command `scripts/test` does)",
        path.display()
    );
    path
}

/// The CRD as JSON, from the types (not from the file).
fn crd_json() -> Value {
    let yaml = crd_yaml().expect("CRD renders");
    serde_yaml::from_str(&yaml).expect("CRD YAML parses")
}

fn openapi_schema(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// Runs `kubernetes-validate --strict` on `file`; returns (success, output).
fn kubernetes_validate(file: &Path) -> (bool, String) {
    let output = Command::new(venv_tool("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .arg(file)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

mod stale {
    use super::*;

    #[test]
    fn committed_crd_matches_the_types() {
        let committed = std::fs::read_to_string(root().join("crds/chatgroup.yaml"))
            .expect("crds/chatgroup.yaml exists");
        let generated = crd_yaml().expect("CRD renders");
        assert!(
            committed == generated,
            "crds/chatgroup.yaml is stale: regenerate with `cargo run -- crd > crds/chatgroup.yaml`"
        );
    }
}

mod crd_schema {
    use super::*;

    #[test]
    fn crd_is_a_valid_apiextensions_v1_object() {
        let (ok, output) = kubernetes_validate(&root().join("crds/chatgroup.yaml"));
        assert!(ok, "{output}");
        assert!(
            output.contains(
                "passed for resource customresourcedefinition/chatgroups.cams.chatapp.io"
            ),
            "{output}"
        );
    }

    #[test]
    fn a_broken_crd_is_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = crd_yaml().expect("CRD renders");
        for (name, broken) in [
            (
                "unknown field",
                good.replacen("openAPIV3Schema:", "openAPIV3Schemas:", 1),
            ),
            (
                "bad scope type",
                good.replacen("scope: Namespaced", "scope: 7", 1),
            ),
            (
                "served not a boolean",
                good.replacen("served: true", "served: yes please", 1),
            ),
        ] {
            assert_ne!(broken, good, "{name}: the mutation must apply");
            let file = dir.path().join("broken.yaml");
            std::fs::write(&file, broken).expect("write");
            let (ok, output) = kubernetes_validate(&file);
            assert!(
                !ok,
                "{name}: kubernetes-validate accepted a broken CRD: {output}"
            );
        }
    }

    #[test]
    fn crd_declares_names_columns_and_status() {
        let crd = crd_json();
        let names = &crd["spec"]["names"];
        assert_eq!(names["kind"], "ChatGroup");
        assert_eq!(names["plural"], "chatgroups");
        assert_eq!(names["shortNames"], serde_json::json!(["cg"]));
        assert_eq!(names["categories"], serde_json::json!(["cams"]));
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            columns,
            ["READY", "SYNCED", "GROUP", "REQUEST-ID", "CODE", "AGE"]
        );
        // GROUP is the group the object manages, adopted (spec.groupId) or created alike.
        let group = version["additionalPrinterColumns"]
            .as_array()
            .expect("columns")
            .iter()
            .find(|c| c["name"] == "GROUP")
            .expect("GROUP");
        assert_eq!(group["jsonPath"], ".status.groupId");
    }

    #[test]
    fn every_spec_field_is_documented() {
        let crd = crd_json();
        let mut undocumented = Vec::new();
        walk_properties(
            &openapi_schema(&crd)["properties"]["spec"],
            "spec",
            &mut |path, schema| {
                if schema["description"].as_str().is_none_or(str::is_empty) {
                    undocumented.push(path.to_owned());
                }
            },
        );
        assert!(
            undocumented.is_empty(),
            "fields without rustdoc: {undocumented:?}"
        );
    }

    fn walk_properties(schema: &Value, path: &str, visit: &mut dyn FnMut(&str, &Value)) {
        visit(path, schema);
        if let Some(properties) = schema["properties"].as_object() {
            for (name, child) in properties {
                walk_properties(child, &format!("{path}.{name}"), visit);
            }
        }
    }
}

/// Every `x-kubernetes-validations` rule of the CRD, by field path (`spec.groupId`).
fn cel_rules(crd: &Value) -> Vec<(String, String, String)> {
    fn walk(schema: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
        if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
            for rule in rules {
                out.push((
                    path.to_owned(),
                    rule["rule"].as_str().unwrap_or_default().to_owned(),
                    rule["message"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, child) in properties {
                let child_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                walk(child, &child_path, out);
            }
        }
        if schema["items"].is_object() {
            walk(&schema["items"], &format!("{path}[]"), out);
        }
    }
    let mut out = Vec::new();
    walk(openapi_schema(crd), "", &mut out);
    out
}

/// Evaluates `rule` with `self` (and `oldSelf` when given), as the API server does.
fn eval_rule(rule: &str, this: &Value, old: Option<&Value>) -> bool {
    use cel_interpreter::{Context, Program, Value as Cel};
    let program =
        Program::compile(rule).unwrap_or_else(|e| panic!("rule {rule:?} does not compile: {e}"));
    let mut context = Context::default();
    context.add_variable_from_value(
        "self",
        cel_interpreter::to_value(this).expect("self converts"),
    );
    if let Some(old) = old {
        context.add_variable_from_value(
            "oldSelf",
            cel_interpreter::to_value(old).expect("oldSelf converts"),
        );
    }
    match program.execute(&context) {
        Ok(Cel::Bool(result)) => result,
        Ok(other) => panic!("rule {rule:?} returned {other:?}, not a bool"),
        // The API server rejects an object whose rule fails to evaluate.
        Err(_) => false,
    }
}

mod cel {
    use super::*;
    use serde_json::json;

    /// `self`, `oldSelf` (for transition rules) and the expected result.
    type Case = (Value, Option<Value>, bool);

    /// Cases for each rule, by `path: message` (a path may hold several rules).
    fn cases() -> BTreeMap<&'static str, Vec<Case>> {
        let immutable = |a: &str, b: &str| {
            vec![
                (json!(a), Some(json!(a)), true),
                (json!(b), Some(json!(a)), false),
            ]
        };
        BTreeMap::from([
            (
                "spec.custSpaceId: custSpaceId is immutable",
                immutable("cams-8f2k1x", "cams-other"),
            ),
            (
                "spec.businessNumber: businessNumber is immutable",
                immutable("8613800001234", "8613800009999"),
            ),
            (
                "spec: groupId cannot change or be removed once set",
                vec![
                    (json!({"groupId": "A"}), Some(json!({"groupId": "A"})), true),
                    (
                        json!({"groupId": "B"}),
                        Some(json!({"groupId": "A"})),
                        false,
                    ),
                    (json!({}), Some(json!({"groupId": "A"})), false),
                    (json!({"groupId": "A"}), Some(json!({})), true),
                    (json!({}), Some(json!({})), true),
                ],
            ),
            (
                "spec: groupId is required unless creationPolicy is Create",
                vec![
                    (
                        json!({"groupId": "A", "creationPolicy": "Adopt"}),
                        None,
                        true,
                    ),
                    (json!({"creationPolicy": "Adopt"}), None, false),
                    (json!({"creationPolicy": "Create"}), None, true),
                ],
            ),
            (
                "spec: subject is required when the operator creates the group (creationPolicy Create without groupId)",
                vec![
                    (
                        json!({"groupId": "A", "creationPolicy": "Adopt"}),
                        None,
                        true,
                    ),
                    (
                        json!({"creationPolicy": "Create", "subject": "Team"}),
                        None,
                        true,
                    ),
                    (json!({"creationPolicy": "Create"}), None, false),
                ],
            ),
            (
                "spec.resyncInterval: resyncInterval must be at least 1m",
                vec![
                    (json!("30s"), None, false),
                    (json!("59s"), None, false),
                    (json!("59.9s"), None, false),
                    (json!("1m"), None, true),
                    (json!("60s"), None, true),
                    (json!("1h"), None, true),
                    (json!("1h30m"), None, true),
                    (json!("12h"), None, true),
                    (json!("not a duration"), None, false),
                ],
            ),
        ])
    }

    #[test]
    fn every_rule_is_tested() {
        let crd = crd_json();
        let rules: BTreeSet<String> = cel_rules(&crd)
            .into_iter()
            .map(|(path, _, message)| format!("{path}: {message}"))
            .collect();
        let case_keys: BTreeSet<String> = cases().keys().map(|p| (*p).to_owned()).collect();
        assert_eq!(
            rules, case_keys,
            "each CEL rule needs cases here, and each case a rule"
        );
    }

    #[test]
    fn every_rule_does_its_job() {
        let crd = crd_json();
        let cases = cases();
        for (path, rule, message) in cel_rules(&crd) {
            assert!(
                !message.is_empty(),
                "rule {rule:?} at {path} has no message"
            );
            for (this, old, expected) in &cases[format!("{path}: {message}").as_str()] {
                assert_eq!(
                    eval_rule(&rule, this, old.as_ref()),
                    *expected,
                    "{path}: {rule:?} with self={this} oldSelf={old:?}"
                );
            }
        }
    }

    #[test]
    fn immutability_rules_are_transition_rules() {
        let mut immutable = 0;
        for (path, rule, message) in cel_rules(&crd_json()) {
            if message.contains("immutable") || message.contains("cannot change") {
                assert!(rule.contains("oldSelf"), "{path}: {rule}");
                immutable += 1;
            }
        }
        assert_eq!(immutable, 3, "custSpaceId, businessNumber and groupId");
    }
}

/// One YAML document of an example file.
struct Doc {
    file: String,
    value: Value,
}

fn examples() -> Vec<Doc> {
    let dir = root().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "examples: {files:?}");
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read example");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if !value.is_null() {
                docs.push(Doc {
                    file: file.display().to_string(),
                    value,
                });
            }
        }
    }
    docs
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = examples()
        .into_iter()
        .map(|d| PathBuf::from(d.file))
        .collect();
    files.dedup();
    files
}

/// Validates ChatGroup documents against the CRD's OpenAPI schema with Python `jsonschema`
/// (as `kubectl apply --validate=strict` would: unknown fields are errors). `nullable` is
/// translated to JSON Schema; other Kubernetes extensions are ignored.
fn schema_check(files: &[PathBuf]) -> (bool, String) {
    const SCRIPT: &str = r#"
import json, sys, yaml, jsonschema

def convert(node, top=False):
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out:
        if top:
            for name in ("apiVersion", "kind", "metadata"):
                out["properties"].setdefault(name, {})
        out.setdefault("additionalProperties", False)
    return out

crd = yaml.safe_load(open(sys.argv[1]))
schema = convert(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], top=True)
validator = jsonschema.Draft202012Validator(schema)
failed = False
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "ChatGroup":
            continue
        name = doc.get("metadata", {}).get("name")
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for e in errors:
            failed = True
            print("ERROR %s %s: %s: %s" % (path, name, ".".join(map(str, e.path)), e.message))
        if not errors:
            print("OK %s %s" % (path, name))
sys.exit(1 if failed else 0)
"#;
    let output = Command::new(venv_tool("python"))
        .arg("-c")
        .arg(SCRIPT)
        .arg(root().join("crds/chatgroup.yaml"))
        .args(files)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

mod examples {
    use super::*;

    fn chat_groups() -> Vec<(String, ChatGroup)> {
        examples()
            .into_iter()
            .filter(|d| d.value["kind"] == "ChatGroup")
            .map(|d| {
                let object: ChatGroup = serde_json::from_value(d.value.clone())
                    .unwrap_or_else(|e| panic!("{}: not a ChatGroup: {e}", d.file));
                (d.file, object)
            })
            .collect()
    }

    #[test]
    fn every_example_is_a_valid_chat_group() {
        let groups = chat_groups();
        assert!(groups.len() >= 6);
        for (file, object) in &groups {
            assert_eq!(
                object.metadata.namespace.as_deref().map(str::is_empty),
                Some(false),
                "{file}"
            );
            if let Err(errors) = validate(&object.spec) {
                panic!("{file}: {errors}");
            }
        }
    }

    #[test]
    fn examples_cover_the_documented_cases() {
        use cams_operator::crd::ManagementPolicy;
        let groups = chat_groups();
        let has = |pred: &dyn Fn(&ChatGroup) -> bool| groups.iter().any(|(_, g)| pred(g));
        assert!(has(&|g| g.spec.management_policy == ManagementPolicy::Plan));
        assert!(has(
            &|g| g.spec.management_policy == ManagementPolicy::Observe
        ));
        assert!(has(&|g| g
            .spec
            .credentials
            .as_ref()
            .is_some_and(|c| c.access_key_id_key.is_some())));
        assert!(has(&|g| g.spec.credentials.is_none()));
        assert!(has(&|g| {
            g.spec.subject.is_some()
                && g.spec.description.is_some()
                && g.spec.profile_picture_file.is_some()
                && g.spec.endpoint.is_some()
        }));
    }

    #[test]
    fn example_credentials_resolve_from_the_secrets_beside_them() {
        let docs = examples();
        for doc in docs.iter().filter(|d| d.value["kind"] == "ChatGroup") {
            let object: ChatGroup = serde_json::from_value(doc.value.clone()).expect("ChatGroup");
            let namespace = object.metadata.namespace.clone().unwrap_or_default();
            let secrets: Vec<k8s_openapi::api::core::v1::Secret> = docs
                .iter()
                .filter(|d| d.file == doc.file && d.value["kind"] == "Secret")
                .map(|d| serde_json::from_value(d.value.clone()).expect("Secret"))
                .collect();
            if secrets.is_empty() {
                continue;
            }
            let lookup = |name: &str| {
                secrets
                    .iter()
                    .find(|s| {
                        s.metadata.name.as_deref() == Some(name)
                            && s.metadata.namespace.as_deref() == Some(namespace.as_str())
                    })
                    .map(|s| {
                        s.string_data
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes()))
                            .collect::<BTreeMap<String, Vec<u8>>>()
                    })
            };
            let resolved = credentials::resolve(
                &object.spec,
                &namespace,
                lookup,
                &IdentityNamespaces::none(),
                None,
            );
            assert!(resolved.is_ok(), "{}: {resolved:?}", doc.file);
        }
    }

    #[test]
    fn example_secrets_pass_kubernetes_validate() {
        for file in example_files() {
            let (ok, output) = kubernetes_validate(&file);
            assert!(ok, "{output}");
            let text = std::fs::read_to_string(&file).expect("read");
            let secrets = text.matches("kind: Secret").count();
            assert_eq!(
                output.matches("passed for resource secret/").count(),
                secrets,
                "{}: {output}",
                file.display()
            );
        }
    }

    #[test]
    fn examples_match_the_crd_schema() {
        let files = example_files();
        let (ok, output) = schema_check(&files);
        assert!(ok, "{output}");
        assert_eq!(
            output.matches("OK ").count(),
            chat_groups().len(),
            "{output}"
        );
    }

    #[test]
    fn the_schema_check_rejects_bad_chat_groups() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = std::fs::read_to_string(root().join("examples/minimal.yaml")).expect("read");
        for (name, bad) in [
            (
                "letters in businessNumber",
                good.replace("\"8613800001234\"", "\"+86 138\""),
            ),
            ("unknown field", good.replace("subject:", "subjekt:")),
            (
                "space in groupId",
                good.replace("  groupId: EA303SALESEMEA\n", "  groupId: EA303 SALES\n"),
            ),
            (
                "http picture",
                format!("{good}  profilePictureFile: http://cdn.example.com/a.jpg\n"),
            ),
            ("bad policy", format!("{good}  managementPolicy: Delete\n")),
        ] {
            assert_ne!(bad, good, "{name}: the mutation must apply");
            let file = dir.path().join("bad.yaml");
            std::fs::write(&file, bad).expect("write");
            let (ok, output) = schema_check(&[file]);
            assert!(!ok, "{name}: accepted: {output}");
            assert!(output.contains("ERROR"), "{name}: {output}");
        }
    }

    #[test]
    fn examples_pass_the_crd_cel_rules() {
        let rules = cel_rules(&crd_json());
        for (file, object) in chat_groups() {
            let value = serde_json::to_value(&object).expect("serialise");
            for (path, rule, _) in &rules {
                let field = path
                    .split('.')
                    .try_fold(&value, |v, part| v.get(part))
                    .unwrap_or(&Value::Null);
                if field.is_null() {
                    continue;
                }
                // On create there is no oldSelf; on an unchanged re-apply oldSelf == self.
                let old = rule.contains("oldSelf").then_some(field);
                assert!(eval_rule(rule, field, old), "{file}: {path}: {rule}");
            }
        }
    }
}

/// `docs/status.md` cannot go stale: every condition type and every reason has its own section,
/// and each failure section quotes the hint the operator appends to its messages.
mod status_docs {
    use super::*;
    use cams_operator::crd::Reason;
    use cams_operator::reconcile::status::hint;

    fn status_md() -> String {
        let path = root().join("docs/status.md");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// The level-3 headings of the page, without their backticks.
    fn headings(text: &str) -> BTreeSet<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix("### "))
            .map(|heading| heading.trim().trim_matches('`').to_owned())
            .collect()
    }

    /// The text with every run of whitespace (line breaks included) folded into one space.
    fn folded(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn every_condition_and_reason_has_a_section() {
        let sections = headings(&status_md());
        for condition in cams_operator::crd::condition::OWN {
            assert!(
                sections.contains(condition),
                "docs/status.md has no `### `{condition}`` section for the condition"
            );
        }
        for reason in Reason::ALL {
            assert!(
                sections.contains(reason.as_str()),
                "docs/status.md has no `### `{reason}`` section: document the new reason"
            );
        }
    }

    #[test]
    fn failure_sections_quote_the_operators_hint() {
        let text = status_md();
        for reason in Reason::ALL {
            let hint = hint(reason);
            if hint.is_empty() {
                continue;
            }
            let heading = format!("### `{reason}`");
            let section = text
                .split_once(&heading)
                .map(|(_, rest)| rest.split("\n### ").next().unwrap_or(rest))
                .unwrap_or_else(|| panic!("docs/status.md has no {heading}"));
            assert!(
                folded(section).contains(&folded(hint)),
                "the {heading} section of docs/status.md does not quote the hint the operator \
                 writes: {hint:?}"
            );
        }
    }

    #[test]
    fn the_checks_catch_a_missing_section() {
        let text = status_md();
        let without = text.replace("### `GroupNotFound`", "### Group not found");
        assert!(!headings(&without).contains(Reason::GroupNotFound.as_str()));
        let hint = folded(hint(Reason::GroupNotFound));
        let doc = folded(&text);
        assert!(doc.contains(&hint));
        assert!(
            !doc.replace("every resync in case", "every resync if")
                .contains(&hint)
        );
    }
}
