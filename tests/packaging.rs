//! Packaging: the Helm chart (rendered by the real helm v4), every rendered object validated against
//! the Kubernetes 1.33 schemas (`kubernetes-validate`), RBAC against `cams_operator::rbac::RULES`,
//! pod security, the Deployment's flags against the real `RunArgs` parser, the chart's CRD and Argo
//! CD copies against their sources, the Dockerfile against the crate, the Argo CD health check
//! run by Debian's `lua5.1` against every case in its `health_test.yaml`, and the metric names in
//! the alert rules and the docs against what the operator exposes.
//!
//! The external tools come from `scripts/install-test-tools`; a missing tool fails the test with
//! a message naming that script.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_yaml::Value;

/// The Kubernetes version every rendered object is validated against.
const KUBE_VERSION: &str = "1.33.0";
const RELEASE: &str = "cams-operator";
const NAMESPACE: &str = "cams-system";
/// The operator's ServiceAccount for release `cams-operator` (the release name contains the chart
/// name, so the full name is the release name).
const SERVICE_ACCOUNT: &str = "cams-operator";

mod support {
    use super::*;

    pub fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    pub fn read(relative: &str) -> String {
        let path = root().join(relative);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// A tool installed by `scripts/install-test-tools`, or a loud failure naming that script.
    pub fn tool(path: &Path, what: &str) -> PathBuf {
        assert!(
            path.exists(),
            "{what} is missing at {}: run scripts/install-test-tools (the test command runs it first)",
            path.display()
        );
        path.to_path_buf()
    }

    pub fn helm() -> PathBuf {
        tool(&root().join(".tools/bin/helm"), "helm")
    }

    pub fn venv_python() -> PathBuf {
        tool(
            &root().join(".venv/bin/python"),
            "the Python venv with kubernetes-validate",
        )
    }

    pub fn lua() -> PathBuf {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
            let candidate = Path::new(dir).join("lua5.1");
            if candidate.exists() {
                return candidate;
            }
        }
        panic!("lua5.1 is missing: run scripts/install-test-tools (it installs Debian's lua5.1)")
    }

    pub struct Output {
        pub ok: bool,
        pub stdout: String,
        pub stderr: String,
    }

    pub fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        {
            let mut input = child.stdin.take().expect("stdin is piped");
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("wait for child");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Walks a path of mapping keys and sequence indexes.
    pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
        let mut current = value;
        for part in path.split('.') {
            current = match part.parse::<usize>() {
                Ok(index) => current.as_sequence()?.get(index)?,
                Err(_) => current.get(part)?,
            };
        }
        Some(current)
    }

    pub fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
        at(value, path)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{path} is not a string in {value:?}"))
    }

    pub fn kind(value: &Value) -> &str {
        str_at(value, "kind")
    }

    pub fn name(value: &Value) -> &str {
        str_at(value, "metadata.name")
    }

    pub fn namespace(value: &Value) -> Option<&str> {
        at(value, "metadata.namespace").and_then(Value::as_str)
    }

    pub fn parse_documents(text: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(text)
            .map(|doc| Value::deserialize(doc).expect("helm renders valid YAML"))
            .filter(|doc| !doc.is_null())
            .collect()
    }
}

/// `helm lint` and `helm template` with the Kubernetes schema validation that every value set
/// gets, and the checks that hold for every value set.
mod render {
    use super::support::*;
    use super::*;

    pub const CHART: &str = "charts/cams-operator";

    pub fn helm_args<'a>(command: &'a str, sets: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![command];
        if command == "template" {
            args.push(RELEASE);
        }
        args.extend([
            CHART,
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
        ]);
        for set in sets {
            args.extend(["--set", set]);
        }
        args
    }

    /// Renders the chart, or returns helm's error text.
    pub fn template(sets: &[&str]) -> Result<String, String> {
        let out = run(&helm(), &helm_args("template", sets), None);
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(out.stderr)
        }
    }

    pub fn lint(sets: &[&str]) {
        let mut args = helm_args("lint", sets);
        args.push("--strict");
        let out = run(&helm(), &args, None);
        assert!(
            out.ok,
            "helm lint {sets:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
    }

    /// One object's verdict from `kubernetes-validate`.
    #[derive(Debug, Deserialize)]
    pub struct Verdict {
        pub kind: String,
        pub name: String,
        /// `valid`, `invalid` or `no-schema`.
        pub result: String,
        pub error: Option<String>,
    }

    /// Validates every document of a multi-document YAML text with kubernetes-validate (strict:
    /// unknown fields are errors). The YAML is parsed by Python's YAML 1.1 loader, as the API
    /// server's would, so an unquoted `on` becomes a boolean here too.
    pub fn kubernetes_validate(yaml: &str) -> Vec<Verdict> {
        const DRIVER: &str = r#"
import json, sys, yaml
import kubernetes_validate.utils as kv
version = sys.argv[1]
verdicts = []
for doc in yaml.safe_load_all(sys.stdin.read()):
    if not doc:
        continue
    verdict = {"kind": doc.get("kind"), "name": doc.get("metadata", {}).get("name"), "error": None}
    try:
        kv.validate(doc, version, strict=True)
        verdict["result"] = "valid"
    except kv.ValidationError as e:
        verdict["result"] = "invalid"
        verdict["error"] = ".".join(str(p) for p in e.path) + ": " + e.message
    except kv.SchemaNotFoundError as e:
        verdict["result"] = "no-schema"
        verdict["error"] = e.message
    verdicts.append(verdict)
print(json.dumps(verdicts))
"#;
        let out = run(&venv_python(), &["-c", DRIVER, KUBE_VERSION], Some(yaml));
        assert!(
            out.ok,
            "kubernetes-validate driver failed (run scripts/install-test-tools):\n{}",
            out.stderr
        );
        serde_json::from_str(&out.stdout).expect("driver prints JSON")
    }

    /// Kinds that kubernetes-validate has no schema for: the Prometheus Operator's CRDs are not
    /// part of Kubernetes and no offline schema for them is installed here. They are checked
    /// structurally by [`crd_kinds::check`] instead.
    pub const PROMETHEUS_OPERATOR_KINDS: [&str; 2] = ["ServiceMonitor", "PrometheusRule"];

    /// Renders, lints and validates one value set, runs the checks common to every value set,
    /// and returns the rendered objects.
    pub fn case(sets: &[&str]) -> Vec<Value> {
        lint(sets);
        let yaml = template(sets).unwrap_or_else(|e| panic!("helm template {sets:?}: {e}"));
        let objects = parse_documents(&yaml);
        assert!(!objects.is_empty(), "helm rendered nothing for {sets:?}");

        let verdicts = kubernetes_validate(&yaml);
        assert_eq!(
            verdicts.len(),
            objects.len(),
            "every rendered object gets a verdict"
        );
        for (verdict, object) in verdicts.iter().zip(&objects) {
            assert_eq!(verdict.kind, kind(object));
            assert_eq!(verdict.name, name(object));
            if PROMETHEUS_OPERATOR_KINDS.contains(&verdict.kind.as_str()) {
                assert_eq!(verdict.result, "no-schema", "{verdict:?}: validate it now");
                crd_kinds::check(object).unwrap_or_else(|e| panic!("{}: {e}", verdict.kind));
            } else {
                assert_eq!(
                    verdict.result,
                    "valid",
                    "{sets:?}: {} {}: {}",
                    verdict.kind,
                    verdict.name,
                    verdict.error.as_deref().unwrap_or_default()
                );
            }
        }

        for object in &objects {
            let labels = at(object, "metadata.labels").expect("every object is labelled");
            assert_eq!(
                labels
                    .get("app.kubernetes.io/instance")
                    .and_then(Value::as_str),
                Some(RELEASE),
                "{} {}",
                kind(object),
                name(object)
            );
            if kind(object) != "CustomResourceDefinition"
                && !kind(object).starts_with("Cluster")
                && !matches!(kind(object), "Role" | "RoleBinding")
            {
                assert_eq!(namespace(object), Some(NAMESPACE), "{}", name(object));
            }
        }

        common::pod_security(&objects);
        common::flags_parse(&objects);
        common::rbac_has_no_wildcards(&objects);
        common::crd(&objects, !sets.contains(&"crds.install=false"));
        objects
    }

    pub fn of_kind<'a>(objects: &'a [Value], wanted: &str) -> Vec<&'a Value> {
        objects.iter().filter(|o| kind(o) == wanted).collect()
    }

    pub fn one_of_kind<'a>(objects: &'a [Value], wanted: &str) -> &'a Value {
        let found = of_kind(objects, wanted);
        assert_eq!(found.len(), 1, "exactly one {wanted}");
        found[0]
    }
}

/// Structural checks for the Prometheus Operator kinds, which kubernetes-validate cannot check:
/// required fields, types, and no unknown keys at the levels the chart writes.
mod crd_kinds {
    use super::support::*;
    use super::*;

    fn keys_within(value: &Value, path: &str, allowed: &[&str]) -> Result<(), String> {
        let map = value
            .as_mapping()
            .ok_or_else(|| format!("{path} must be a mapping"))?;
        for key in map.keys() {
            let key = key
                .as_str()
                .ok_or_else(|| format!("{path} has a non-string key"))?;
            if !allowed.contains(&key) {
                return Err(format!("{path}.{key} is not a known field"));
            }
        }
        Ok(())
    }

    fn string_map(value: Option<&Value>, path: &str) -> Result<(), String> {
        let Some(value) = value else { return Ok(()) };
        let map = value
            .as_mapping()
            .ok_or_else(|| format!("{path} must be a mapping"))?;
        if map.iter().all(|(k, v)| k.is_string() && v.is_string()) {
            Ok(())
        } else {
            Err(format!("{path} must map strings to strings"))
        }
    }

    fn non_empty_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, String> {
        match at(value, path).and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(format!("{path} must be a non-empty string")),
        }
    }

    fn duration(value: Option<&Value>, path: &str) -> Result<(), String> {
        let Some(value) = value else { return Ok(()) };
        let text = value
            .as_str()
            .ok_or_else(|| format!("{path} must be a string"))?;
        let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(0));
        if !digits.is_empty() && ["ms", "s", "m", "h", "d"].contains(&unit) {
            Ok(())
        } else {
            Err(format!("{path} {text:?} is not a Prometheus duration"))
        }
    }

    fn balanced(expr: &str) -> bool {
        let mut stack = Vec::new();
        for c in expr.chars() {
            match c {
                '(' | '{' | '[' => stack.push(c),
                ')' | '}' | ']' => {
                    let open = stack.pop();
                    if open
                        != Some(match c {
                            ')' => '(',
                            '}' => '{',
                            _ => '[',
                        })
                    {
                        return false;
                    }
                }
                _ => {}
            }
        }
        stack.is_empty()
    }

    fn metadata(object: &Value) -> Result<(), String> {
        if str_at(object, "apiVersion") != "monitoring.coreos.com/v1" {
            return Err("apiVersion must be monitoring.coreos.com/v1".into());
        }
        keys_within(object, "", &["apiVersion", "kind", "metadata", "spec"])?;
        non_empty_str(object, "metadata.name")?;
        non_empty_str(object, "metadata.namespace")?;
        string_map(at(object, "metadata.labels"), "metadata.labels")?;
        Ok(())
    }

    /// Checks a ServiceMonitor or PrometheusRule.
    pub fn check(object: &Value) -> Result<(), String> {
        metadata(object)?;
        let spec = at(object, "spec").ok_or("spec is required")?;
        match kind(object) {
            "ServiceMonitor" => {
                keys_within(
                    spec,
                    "spec",
                    &["selector", "namespaceSelector", "endpoints", "jobLabel"],
                )?;
                let labels = at(spec, "selector.matchLabels").ok_or("spec.selector.matchLabels")?;
                string_map(Some(labels), "spec.selector.matchLabels")?;
                let endpoints = at(spec, "endpoints")
                    .and_then(Value::as_sequence)
                    .filter(|e| !e.is_empty())
                    .ok_or("spec.endpoints must be a non-empty list")?;
                for endpoint in endpoints {
                    keys_within(
                        endpoint,
                        "spec.endpoints[]",
                        &["port", "path", "interval", "scrapeTimeout", "scheme"],
                    )?;
                    non_empty_str(endpoint, "port")?;
                    if !non_empty_str(endpoint, "path")?.starts_with('/') {
                        return Err("spec.endpoints[].path must start with /".into());
                    }
                    duration(at(endpoint, "interval"), "interval")?;
                    duration(at(endpoint, "scrapeTimeout"), "scrapeTimeout")?;
                }
                Ok(())
            }
            "PrometheusRule" => {
                keys_within(spec, "spec", &["groups"])?;
                let groups = at(spec, "groups")
                    .and_then(Value::as_sequence)
                    .filter(|g| !g.is_empty())
                    .ok_or("spec.groups must be a non-empty list")?;
                for group in groups {
                    keys_within(group, "spec.groups[]", &["name", "rules", "interval"])?;
                    non_empty_str(group, "name")?;
                    let rules = at(group, "rules")
                        .and_then(Value::as_sequence)
                        .filter(|r| !r.is_empty())
                        .ok_or("spec.groups[].rules must be a non-empty list")?;
                    for rule in rules {
                        keys_within(
                            rule,
                            "rule",
                            &["alert", "record", "expr", "for", "labels", "annotations"],
                        )?;
                        if at(rule, "alert").is_some() == at(rule, "record").is_some() {
                            return Err("a rule has exactly one of alert and record".into());
                        }
                        let expr = non_empty_str(rule, "expr")?;
                        if !balanced(expr) {
                            return Err(format!("unbalanced brackets in {expr:?}"));
                        }
                        duration(at(rule, "for"), "for")?;
                        string_map(at(rule, "labels"), "labels")?;
                        string_map(at(rule, "annotations"), "annotations")?;
                    }
                }
                Ok(())
            }
            other => Err(format!("{other} is not a Prometheus Operator kind")),
        }
    }
}

/// Checks that hold for every value set.
mod common {
    use super::render::*;
    use super::support::*;
    use super::*;
    use cams_operator::cli::RunArgs;
    use clap::{Args, FromArgMatches};

    pub fn deployment(objects: &[Value]) -> &Value {
        one_of_kind(objects, "Deployment")
    }

    pub fn container(objects: &[Value]) -> &Value {
        let containers = at(deployment(objects), "spec.template.spec.containers")
            .and_then(Value::as_sequence)
            .expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    /// The restricted Pod Security Standard, and resources set.
    pub fn pod_security(objects: &[Value]) {
        let pod = at(deployment(objects), "spec.template.spec").expect("pod spec");
        let c = container(objects);
        let truthy = |v: &Value, p: &str| at(v, p).and_then(Value::as_bool) == Some(true);
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(!truthy(pod, host), "{host}");
        }
        assert!(truthy(pod, "securityContext.runAsNonRoot"));
        assert_eq!(
            str_at(pod, "securityContext.seccompProfile.type"),
            "RuntimeDefault"
        );
        assert!(truthy(c, "securityContext.runAsNonRoot"));
        assert!(truthy(c, "securityContext.readOnlyRootFilesystem"));
        assert_eq!(
            at(c, "securityContext.allowPrivilegeEscalation").and_then(Value::as_bool),
            Some(false)
        );
        assert!(!truthy(c, "securityContext.privileged"));
        assert_eq!(
            str_at(c, "securityContext.seccompProfile.type"),
            "RuntimeDefault"
        );
        let drop: Vec<&str> = at(c, "securityContext.capabilities.drop")
            .and_then(Value::as_sequence)
            .expect("capabilities.drop")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(drop, ["ALL"]);
        assert!(at(c, "securityContext.capabilities.add").is_none());
        for scope in [pod, c] {
            if let Some(uid) = at(scope, "securityContext.runAsUser") {
                assert_ne!(uid.as_i64(), Some(0), "never root");
            }
        }
        for path in [
            "resources.requests.cpu",
            "resources.requests.memory",
            "resources.limits.cpu",
            "resources.limits.memory",
        ] {
            assert!(at(c, path).is_some(), "{path} is set");
        }
    }

    fn container_port(objects: &[Value], port_name: &str) -> u16 {
        at(container(objects), "ports")
            .and_then(Value::as_sequence)
            .expect("ports")
            .iter()
            .find(|p| at(p, "name").and_then(Value::as_str) == Some(port_name))
            .and_then(|p| at(p, "containerPort"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("container port {port_name}"))
    }

    /// The container's arguments, as strings.
    pub fn args(objects: &[Value]) -> Vec<String> {
        at(container(objects), "args")
            .and_then(Value::as_sequence)
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("string arg").to_owned())
            .collect()
    }

    /// Parses the rendered arguments with the real `cams-operator run` parser (`RunArgs`), as
    /// the image's entrypoint `cams-operator run` receives them. The process environment must not
    /// leak into the parse, so the env twins are stripped from the command.
    pub fn parse_run_args(args: &[String]) -> RunArgs {
        let command = RunArgs::augment_args(clap::Command::new("run"));
        let args_without_env: Vec<clap::Arg> = command
            .get_arguments()
            .cloned()
            .map(|arg| arg.env(None::<&str>))
            .collect();
        let command = clap::Command::new("run").args(args_without_env);
        let matches = command
            .try_get_matches_from(std::iter::once("run".to_owned()).chain(args.iter().cloned()))
            .unwrap_or_else(|e| panic!("cams-operator run rejects {args:?}: {e}"));
        RunArgs::from_arg_matches(&matches).expect("RunArgs from matches")
    }

    /// Every flag in the Deployment is accepted by `cams-operator run`, and the ports it binds
    /// are the ports the pod declares and the probes use.
    pub fn flags_parse(objects: &[Value]) {
        let c = container(objects);
        assert!(
            at(c, "command").is_none(),
            "the image's entrypoint (cams-operator run) is used"
        );
        let run = parse_run_args(&args(objects));
        assert_eq!(run.metrics_addr.port(), container_port(objects, "metrics"));
        assert_eq!(run.health_addr.port(), container_port(objects, "health"));
        assert_eq!(str_at(c, "livenessProbe.httpGet.path"), "/livez");
        assert_eq!(str_at(c, "readinessProbe.httpGet.path"), "/readyz");
        assert_eq!(str_at(c, "livenessProbe.httpGet.port"), "health");
        assert_eq!(str_at(c, "readinessProbe.httpGet.port"), "health");
        let replicas = at(deployment(objects), "spec.replicas")
            .and_then(Value::as_u64)
            .expect("replicas");
        assert!(
            replicas <= 1 || run.leader_election,
            "several replicas only with leader election"
        );
        let strategy = str_at(deployment(objects), "spec.strategy.type");
        assert_eq!(
            strategy,
            if run.leader_election {
                "RollingUpdate"
            } else {
                "Recreate"
            },
            "two operators never run at once without a Lease"
        );
    }

    pub fn rbac_has_no_wildcards(objects: &[Value]) {
        for object in objects {
            if !matches!(kind(object), "Role" | "ClusterRole") {
                continue;
            }
            let text = serde_yaml::to_string(at(object, "rules").expect("rules")).expect("yaml");
            assert!(!text.contains('*'), "{}: wildcard in {text}", name(object));
            for rule in rules_of(object) {
                if rule.1 == "secrets" {
                    assert_eq!(rule.2, ["get", "list", "watch"], "{}", name(object));
                }
            }
        }
    }

    /// A rule as (apiGroup, resource, sorted verbs), one per group and resource.
    pub type Rule = (String, String, Vec<String>);

    pub fn rules_of(role: &Value) -> Vec<Rule> {
        let strings = |v: &Value, key: &str| -> Vec<String> {
            at(v, key)
                .and_then(Value::as_sequence)
                .unwrap_or_else(|| panic!("{key} in {v:?}"))
                .iter()
                .map(|s| s.as_str().expect("string").to_owned())
                .collect()
        };
        let mut out = Vec::new();
        for rule in at(role, "rules")
            .and_then(Value::as_sequence)
            .expect("rules")
        {
            assert!(at(rule, "resourceNames").is_none());
            assert!(at(rule, "nonResourceURLs").is_none());
            let mut verbs = strings(rule, "verbs");
            verbs.sort();
            for group in strings(rule, "apiGroups") {
                for resource in strings(rule, "resources") {
                    out.push((group.clone(), resource, verbs.clone()));
                }
            }
        }
        out.sort();
        out
    }

    /// The rendered CRD equals `crds/chatgroup.yaml` apart from the labels and annotations the
    /// chart adds; it is absent with `crds.install=false`.
    pub fn crd(objects: &[Value], installed: bool) {
        let crds = of_kind(objects, "CustomResourceDefinition");
        if !installed {
            assert!(crds.is_empty(), "crds.install=false renders no CRD");
            return;
        }
        assert_eq!(crds.len(), 1);
        let mut rendered = crds[0].clone();
        assert_eq!(
            at(&rendered, "metadata.annotations")
                .and_then(|a| a.get("helm.sh/resource-policy"))
                .and_then(Value::as_str),
            Some("keep"),
            "the CRD outlives the release"
        );
        let committed: Value =
            serde_yaml::from_str(&read("crds/chatgroup.yaml")).expect("crds/chatgroup.yaml");
        // Drop what the chart adds (its labels and the keep annotation), keeping whatever the
        // committed file carries itself.
        let chart_labels = at(deployment_or_first(objects), "metadata.labels")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        for (field, added) in [
            ("labels", chart_labels.keys().cloned().collect::<Vec<_>>()),
            ("annotations", vec![Value::from("helm.sh/resource-policy")]),
        ] {
            let own = at(&committed, &format!("metadata.{field}")).and_then(Value::as_mapping);
            let meta = rendered
                .get_mut("metadata")
                .and_then(Value::as_mapping_mut)
                .expect("metadata");
            if let Some(map) = meta.get_mut(field).and_then(Value::as_mapping_mut) {
                for key in &added {
                    if !own.is_some_and(|o| o.contains_key(key)) {
                        map.remove(key);
                    }
                }
                if map.is_empty() {
                    meta.remove(field);
                }
            }
        }
        assert!(
            numbers_normalised(rendered) == numbers_normalised(committed),
            "the chart's CRD differs from crds/chatgroup.yaml; refresh the chart's copy with\n  \
             cp crds/chatgroup.yaml charts/cams-operator/files/crds/chatgroup.yaml"
        );
    }

    /// JSON makes no difference between `0` and `0.0` (the committed CRD says `minimum: 0.0`;
    /// helm's YAML round trip writes `0`), so integral floats compare as integers.
    fn numbers_normalised(value: Value) -> Value {
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    Value::from(f as i64)
                }
                _ => Value::Number(n),
            },
            Value::Sequence(items) => {
                Value::Sequence(items.into_iter().map(numbers_normalised).collect())
            }
            Value::Mapping(map) => Value::Mapping(
                map.into_iter()
                    .map(|(k, v)| (k, numbers_normalised(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    fn deployment_or_first(objects: &[Value]) -> &Value {
        of_kind(objects, "Deployment")
            .first()
            .copied()
            .unwrap_or(&objects[0])
    }
}

/// The value sets of the chart, each rendered, linted and validated.
mod chart {
    use super::common::*;
    use super::render::*;
    use super::support::*;
    use super::*;
    use cams_operator::controller::command;
    use cams_operator::identity;
    use cams_operator::rbac::{RULES, Scope};
    use cams_operator::reconcile::credentials::{IDENTITY_NAMESPACES_FLAG, IdentityNamespaces};

    fn expected_rules(scope: Scope) -> Vec<Rule> {
        let mut rules: Vec<Rule> = RULES
            .iter()
            .filter(|r| r.scope == scope)
            .map(|r| {
                let mut verbs: Vec<String> = r.verbs.iter().map(|v| (*v).to_owned()).collect();
                verbs.sort();
                (r.api_group.to_owned(), r.resource.to_owned(), verbs)
            })
            .collect();
        rules.sort();
        rules
    }

    fn binds_operator(binding: &Value) -> bool {
        at(binding, "subjects")
            .and_then(Value::as_sequence)
            .is_some_and(|subjects| {
                subjects.iter().any(|s| {
                    str_at(s, "kind") == "ServiceAccount"
                        && str_at(s, "name") == SERVICE_ACCOUNT
                        && str_at(s, "namespace") == NAMESPACE
                })
            })
    }

    /// What the operator's ServiceAccount is granted: (namespace or None for cluster-wide, rules).
    fn operator_grants(objects: &[Value]) -> BTreeMap<Option<String>, Vec<Rule>> {
        let mut grants: BTreeMap<Option<String>, Vec<Rule>> = BTreeMap::new();
        for binding in objects.iter().filter(|o| binds_operator(o)) {
            let (role_kind, scope) = match kind(binding) {
                "ClusterRoleBinding" => ("ClusterRole", None),
                "RoleBinding" => (
                    str_at(binding, "roleRef.kind"),
                    Some(namespace(binding).expect("namespaced").to_owned()),
                ),
                other => panic!("{other} binds the operator"),
            };
            assert_eq!(str_at(binding, "roleRef.kind"), role_kind);
            assert_eq!(
                role_kind,
                if scope.is_some() {
                    "Role"
                } else {
                    "ClusterRole"
                }
            );
            let role_name = str_at(binding, "roleRef.name");
            let role = objects
                .iter()
                .find(|o| {
                    kind(o) == role_kind
                        && name(o) == role_name
                        && namespace(o).map(str::to_owned) == scope
                })
                .unwrap_or_else(|| panic!("{role_kind} {role_name} is rendered"));
            let entry = grants.entry(scope).or_default();
            entry.extend(rules_of(role));
            entry.sort();
        }
        grants
    }

    fn assert_grants(objects: &[Value], watched: &[&str], lease_namespace: Option<&str>) {
        let mut expected: BTreeMap<Option<String>, Vec<Rule>> = BTreeMap::new();
        if watched.is_empty() {
            expected.insert(None, expected_rules(Scope::Watched));
        }
        for ns in watched {
            expected.insert(Some((*ns).to_owned()), expected_rules(Scope::Watched));
        }
        if let Some(ns) = lease_namespace {
            let entry = expected.entry(Some(ns.to_owned())).or_default();
            entry.extend(expected_rules(Scope::Lease));
            entry.sort();
        }
        assert_eq!(
            operator_grants(objects),
            expected,
            "the chart grants exactly cams_operator::rbac::RULES"
        );
    }

    #[test]
    fn defaults() {
        let objects = case(&[]);
        assert_grants(&objects, &[], None);
        let run = parse_run_args(&args(&objects));
        assert!(run.namespaces.is_empty());
        assert!(!run.leader_election);
        assert!(of_kind(&objects, "PodDisruptionBudget").is_empty());
        assert!(of_kind(&objects, "NetworkPolicy").is_empty());
        assert!(of_kind(&objects, "ServiceMonitor").is_empty());
        assert!(of_kind(&objects, "PrometheusRule").is_empty());
        assert!(of_kind(&objects, "ConfigMap").is_empty());
        assert!(of_kind(&objects, "Lease").is_empty());
        let image = str_at(container(&objects), "image");
        assert_eq!(
            image,
            format!("cams-operator:{}", env!("CARGO_PKG_VERSION")),
            "the default tag is the appVersion, which is the crate version"
        );
        let service = one_of_kind(&objects, "Service");
        assert_eq!(str_at(service, "spec.ports.0.targetPort"), "metrics");
        // User-facing aggregated roles never reach status or Secrets.
        for role in of_kind(&objects, "ClusterRole") {
            if name(role).contains("chatgroups-") {
                for (_, resource, _) in rules_of(role) {
                    assert_eq!(resource, "chatgroups");
                }
            }
        }
    }

    #[test]
    fn namespaced_mode_grants_roles_only_in_watched_namespaces() {
        let objects = case(&["watchNamespaces={support,sales}"]);
        assert_grants(&objects, &["support", "sales"], None);
        assert!(
            !objects
                .iter()
                .any(|o| kind(o) == "ClusterRoleBinding" && binds_operator(o)),
            "nothing cluster-wide for the operator"
        );
        let run = parse_run_args(&args(&objects));
        assert_eq!(run.namespaces, ["support", "sales"]);
    }

    #[test]
    fn leader_election_with_two_replicas() {
        let objects = case(&["replicaCount=2", "leaderElection.enabled=true"]);
        assert_grants(&objects, &[], Some(NAMESPACE));
        let run = parse_run_args(&args(&objects));
        assert!(run.leader_election);
        assert_eq!(run.lease_name, RELEASE);
        assert_eq!(run.lease_namespace.as_deref(), Some(NAMESPACE));
        let pdb = one_of_kind(&objects, "PodDisruptionBudget");
        assert_eq!(
            at(pdb, "spec.minAvailable").and_then(Value::as_u64),
            Some(1)
        );
        assert_eq!(
            at(pdb, "spec.selector.matchLabels"),
            at(common::deployment(&objects), "spec.selector.matchLabels")
        );
    }

    #[test]
    fn leader_election_lease_in_its_own_namespace_with_watch_list() {
        let objects = case(&[
            "replicaCount=2",
            "leaderElection.enabled=true",
            "leaderElection.leaseNamespace=cams-leases",
            "leaderElection.leaseName=shard-a",
            "watchNamespaces={support}",
            "selector=shard=a",
        ]);
        assert_grants(&objects, &["support"], Some("cams-leases"));
        let run = parse_run_args(&args(&objects));
        assert_eq!(run.lease_name, "shard-a");
        assert_eq!(run.lease_namespace.as_deref(), Some("cams-leases"));
        assert_eq!(run.selector.as_deref(), Some("shard=a"));
    }

    #[test]
    fn service_monitor() {
        let objects = case(&["serviceMonitor.enabled=true"]);
        let monitor = one_of_kind(&objects, "ServiceMonitor");
        let service = one_of_kind(&objects, "Service");
        let selector = at(monitor, "spec.selector.matchLabels")
            .and_then(Value::as_mapping)
            .expect("matchLabels");
        let labels = at(service, "metadata.labels")
            .and_then(Value::as_mapping)
            .expect("labels");
        for (k, v) in selector {
            assert_eq!(
                labels.get(k),
                Some(v),
                "the ServiceMonitor selects the Service"
            );
        }
        assert_eq!(
            str_at(monitor, "spec.endpoints.0.port"),
            str_at(service, "spec.ports.0.name")
        );
        assert_eq!(str_at(monitor, "spec.endpoints.0.path"), "/metrics");
    }

    #[test]
    fn network_policy() {
        let objects = case(&["networkPolicy.enabled=true"]);
        let policy = one_of_kind(&objects, "NetworkPolicy");
        assert_eq!(
            at(policy, "spec.podSelector.matchLabels"),
            at(common::deployment(&objects), "spec.selector.matchLabels")
        );
        let ingress_ports: BTreeSet<&str> = at(policy, "spec.ingress")
            .and_then(Value::as_sequence)
            .expect("ingress")
            .iter()
            .flat_map(|rule| {
                at(rule, "ports")
                    .and_then(Value::as_sequence)
                    .expect("ports")
            })
            .map(|p| str_at(p, "port"))
            .collect();
        assert_eq!(ingress_ports, BTreeSet::from(["health", "metrics"]));
        let egress_ports: BTreeSet<u64> = at(policy, "spec.egress")
            .and_then(Value::as_sequence)
            .expect("egress")
            .iter()
            .flat_map(|rule| {
                at(rule, "ports")
                    .and_then(Value::as_sequence)
                    .expect("ports")
            })
            .map(|p| at(p, "port").and_then(Value::as_u64).expect("numeric port"))
            .collect();
        assert_eq!(egress_ports, BTreeSet::from([53, 443, 6443]));
    }

    #[test]
    fn crds_install_false_renders_no_crd() {
        let objects = case(&["crds.install=false"]);
        assert!(of_kind(&objects, "CustomResourceDefinition").is_empty());
        // The operator itself is unaffected.
        common::deployment(&objects);
    }

    #[test]
    fn prometheus_rule() {
        let objects = case(&["prometheusRule.enabled=true", "serviceMonitor.enabled=true"]);
        let rule = one_of_kind(&objects, "PrometheusRule");
        let alerts: Vec<&Value> = at(rule, "spec.groups.0.rules")
            .and_then(Value::as_sequence)
            .expect("rules")
            .iter()
            .collect();
        let service = one_of_kind(&objects, "Service");
        let job = format!("job=\"{}\"", name(service));
        for alert in &alerts {
            let expr = str_at(alert, "expr");
            assert!(
                expr.contains(&job),
                "{expr} selects the ServiceMonitor's job"
            );
            for metric in expr.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if metric.starts_with("cams_") {
                    assert!(
                        metric.starts_with("cams_operator_"),
                        "metrics prefix: {metric}"
                    );
                }
            }
        }
        assert!(alerts.len() >= 4);
    }

    #[test]
    fn argocd_health_check_configmap() {
        let objects = case(&["argocd.healthCheck.enabled=true"]);
        let config = one_of_kind(&objects, "ConfigMap");
        let script = at(config, "data")
            .and_then(|d| d.get("resource.customizations.health.cams.chatapp.io_ChatGroup"))
            .and_then(Value::as_str)
            .expect("the argocd-cm health key");
        assert_eq!(
            script,
            read("resource_customizations/cams.chatapp.io/ChatGroup/health.lua"),
            "the ConfigMap carries the tested health.lua"
        );
    }

    #[test]
    fn operator_credentials_and_rrsa() {
        let objects = case(&[
            "credentials.existingSecret=cams-operator-credentials",
            "rrsa.enabled=true",
            "rrsa.roleName=cams-operator-role",
        ]);
        let env = at(container(&objects), "env")
            .and_then(Value::as_sequence)
            .expect("env");
        let secret_env: BTreeMap<&str, (&str, bool)> = env
            .iter()
            .filter(|e| at(e, "valueFrom.secretKeyRef").is_some())
            .map(|e| {
                (
                    str_at(e, "name"),
                    (
                        str_at(e, "valueFrom.secretKeyRef.key"),
                        at(e, "valueFrom.secretKeyRef.optional").and_then(Value::as_bool)
                            == Some(true),
                    ),
                )
            })
            .collect();
        // The names the operator reads (`cams_operator::identity`).
        assert_eq!(
            secret_env,
            BTreeMap::from([
                (identity::ENV_ACCESS_KEY_ID, ("accessKeyId", false)),
                (identity::ENV_ACCESS_KEY_SECRET, ("accessKeySecret", false)),
                (identity::ENV_SECURITY_TOKEN, ("securityToken", true)),
            ])
        );
        // The optional RRSA settings are not set unless given.
        assert!(
            env.iter()
                .all(|e| !str_at(e, "name").starts_with("ALIBABA_CLOUD_STS")
                    && str_at(e, "name") != identity::ENV_ROLE_SESSION_NAME)
        );
        let pod_labels = at(
            common::deployment(&objects),
            "spec.template.metadata.labels",
        )
        .expect("pod labels");
        assert_eq!(
            pod_labels
                .get("pod-identity.alibabacloud.com/injection")
                .and_then(Value::as_str),
            Some("on")
        );
        let account = one_of_kind(&objects, "ServiceAccount");
        assert_eq!(
            at(account, "metadata.annotations")
                .and_then(|a| a.get("pod-identity.alibabacloud.com/role-name"))
                .and_then(Value::as_str),
            Some("cams-operator-role")
        );
        assert_eq!(
            str_at(
                common::deployment(&objects),
                "spec.template.spec.serviceAccountName"
            ),
            name(account)
        );
    }

    #[test]
    fn rrsa_session_name_and_sts_endpoint_become_env() {
        let plain_env = |objects: &[Value]| -> BTreeMap<String, String> {
            at(container(objects), "env")
                .and_then(Value::as_sequence)
                .expect("env")
                .iter()
                .filter_map(|e| {
                    at(e, "value")
                        .and_then(Value::as_str)
                        .map(|v| (str_at(e, "name").to_owned(), v.to_owned()))
                })
                .collect()
        };
        let settings = [
            "rrsa.roleSessionName=cams-operator@shard-a",
            "rrsa.stsEndpoint=sts-vpc.cn-hangzhou.aliyuncs.com",
        ];
        let mut on = vec!["rrsa.enabled=true", "rrsa.roleName=cams-operator-role"];
        on.extend(settings);
        let env = plain_env(&case(&on));
        assert_eq!(
            env.get(identity::ENV_ROLE_SESSION_NAME).map(String::as_str),
            Some("cams-operator@shard-a")
        );
        assert_eq!(
            env.get(identity::ENV_STS_ENDPOINT).map(String::as_str),
            Some("sts-vpc.cn-hangzhou.aliyuncs.com")
        );
        // Without RRSA they are ignored.
        let env = plain_env(&case(&settings));
        assert!(
            !env.contains_key(identity::ENV_ROLE_SESSION_NAME),
            "{env:?}"
        );
        assert!(!env.contains_key(identity::ENV_STS_ENDPOINT), "{env:?}");
        // The schema refuses a session name STS would refuse.
        let err = template(&["rrsa.roleSessionName=has space"]).expect_err("refused");
        assert!(err.contains("roleSessionName"), "{err}");
    }

    /// `credentials.namespaces` becomes `--identity-namespaces`; without it the operator allows
    /// the namespace it runs in, which the chart passes as `POD_NAMESPACE` (the release
    /// namespace). The schema takes namespace names or exactly `["*"]`.
    #[test]
    fn identity_namespaces_come_from_credentials_namespaces() {
        let allowed = |objects: &[Value]| {
            let run = parse_run_args(&args(objects));
            let env = at(container(objects), "env")
                .and_then(Value::as_sequence)
                .expect("env");
            let pod_namespace = env
                .iter()
                .find(|e| str_at(e, "name") == command::ENV_POD_NAMESPACE)
                .expect("POD_NAMESPACE is set");
            assert_eq!(
                str_at(pod_namespace, "valueFrom.fieldRef.fieldPath"),
                "metadata.namespace"
            );
            IdentityNamespaces::from_flag(&run.identity_namespaces, NAMESPACE)
                .unwrap_or_else(|e| panic!("the rendered flag is refused: {e}"))
        };
        let flag = |objects: &[Value]| {
            args(objects)
                .into_iter()
                .filter(|a| a.starts_with(IDENTITY_NAMESPACES_FLAG))
                .collect::<Vec<_>>()
        };

        let objects = case(&[]);
        assert!(flag(&objects).is_empty(), "{:?}", args(&objects));
        assert_eq!(allowed(&objects), IdentityNamespaces::only([NAMESPACE]));

        let objects = case(&["credentials.namespaces={support,sales}"]);
        assert_eq!(flag(&objects), ["--identity-namespaces=support,sales"]);
        assert_eq!(
            allowed(&objects),
            IdentityNamespaces::only(["support", "sales"])
        );

        let objects = case(&["credentials.namespaces={*}"]);
        assert_eq!(flag(&objects), ["--identity-namespaces=*"]);
        assert_eq!(allowed(&objects), IdentityNamespaces::All);

        for refused in [
            "credentials.namespaces={*,support}",
            "credentials.namespaces={Sales}",
            "credentials.namespaces={support,support}",
            "credentials.namespaces=support",
        ] {
            let err = template(&[refused]).expect_err("refused");
            assert!(err.contains("/credentials/namespaces"), "{refused}: {err}");
        }
    }

    #[test]
    fn unsafe_or_unknown_values_are_refused() {
        let refused = [
            (&["replicaCount=2"][..], "requires leaderElection.enabled"),
            (&["rrsa.enabled=true"][..], "roleName"),
            (&["replicas=2"][..], "additional properties"),
            (&["logFormat=xml"][..], "logFormat"),
            (&["camsQps=0"][..], "camsQps"),
        ];
        for (sets, needle) in refused {
            let err = template(sets).expect_err("refused");
            assert!(err.contains(needle), "{sets:?}: {err}");
        }
    }

    #[test]
    fn install_notes_render() {
        let out = run(
            &helm(),
            &[
                "install",
                RELEASE,
                CHART,
                "--namespace",
                NAMESPACE,
                "--dry-run=client",
                "--set",
                "watchNamespaces={support,sales}",
                "--set",
                "leaderElection.enabled=true",
            ],
            None,
        );
        assert!(out.ok, "helm install --dry-run=client: {}", out.stderr);
        let notes = out
            .stdout
            .split("NOTES:")
            .nth(1)
            .expect("NOTES are printed");
        assert!(notes.contains("namespaces support, sales"), "{notes}");
        assert!(notes.contains("Lease cams-system/cams-operator"), "{notes}");
    }

    /// The validation above can fail: broken objects are rejected by kubernetes-validate and by
    /// the structural checks of the Prometheus Operator kinds.
    #[test]
    fn validation_rejects_broken_manifests() {
        let yaml = template(&["serviceMonitor.enabled=true", "prometheusRule.enabled=true"])
            .expect("renders");
        let objects = parse_documents(&yaml);
        let deployment = common::deployment(&objects).clone();

        let mut wrong_type = deployment.clone();
        wrong_type["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] =
            Value::from("always");
        let mut unknown_field = deployment.clone();
        unknown_field["spec"]["replicaz"] = Value::from(2);
        let mut missing_required = deployment;
        missing_required["spec"]
            .as_mapping_mut()
            .expect("spec")
            .remove("selector");
        let broken: Vec<String> = [wrong_type, unknown_field, missing_required]
            .iter()
            .map(|o| serde_yaml::to_string(o).expect("yaml"))
            .collect();
        let verdicts = kubernetes_validate(&broken.join("---\n"));
        assert_eq!(verdicts.len(), 3);
        for verdict in &verdicts {
            assert_eq!(verdict.result, "invalid", "{verdict:?}");
        }
        // An unquoted YAML 1.1 boolean where a string belongs is caught, as the API server would.
        let unquoted = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  flag: on\n";
        assert_eq!(kubernetes_validate(unquoted)[0].result, "invalid");

        let mut monitor = one_of_kind(&objects, "ServiceMonitor").clone();
        crd_kinds::check(&monitor).expect("the rendered ServiceMonitor passes");
        monitor["spec"]["endpoints"] = Value::Sequence(vec![]);
        assert!(crd_kinds::check(&monitor).is_err());
        let mut rule = one_of_kind(&objects, "PrometheusRule").clone();
        crd_kinds::check(&rule).expect("the rendered PrometheusRule passes");
        rule["spec"]["groups"][0]["rules"][0]["expr"] = Value::from("sum(rate(x[5m])");
        assert!(crd_kinds::check(&rule).is_err());
        let mut rule = one_of_kind(&objects, "PrometheusRule").clone();
        rule["spec"]["groups"][0]["rules"][0]["severity"] = Value::from("page");
        assert!(crd_kinds::check(&rule).is_err());
    }

    #[test]
    fn chart_copies_are_current() {
        for (copy, source) in [
            (
                "charts/cams-operator/files/crds/chatgroup.yaml",
                "crds/chatgroup.yaml",
            ),
            (
                "charts/cams-operator/files/argocd/health.lua",
                "resource_customizations/cams.chatapp.io/ChatGroup/health.lua",
            ),
        ] {
            assert!(
                read(copy) == read(source),
                "{copy} is stale; refresh it with\n  cp {source} {copy}"
            );
        }
    }

    fn chart_yaml() -> Value {
        serde_yaml::from_str(&read("charts/cams-operator/Chart.yaml")).expect("Chart.yaml")
    }

    #[test]
    fn chart_metadata_matches_the_crate() {
        let chart = chart_yaml();
        assert_eq!(str_at(&chart, "name"), "cams-operator");
        assert_eq!(str_at(&chart, "apiVersion"), "v2");
        assert_eq!(str_at(&chart, "appVersion"), env!("CARGO_PKG_VERSION"));
    }

    /// Dotted paths of values.yaml, descending into mappings.
    fn value_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let Some(map) = value.as_mapping() {
            for (k, v) in map {
                let key = k.as_str().expect("string key");
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                value_paths(v, &path, out);
            }
        }
    }

    fn values_yaml_paths() -> BTreeSet<String> {
        let values: Value =
            serde_yaml::from_str(&read("charts/cams-operator/values.yaml")).expect("values.yaml");
        let mut paths = BTreeSet::new();
        value_paths(&values, "", &mut paths);
        paths
    }

    #[test]
    fn readme_table_lists_every_value() {
        let readme = read("charts/cams-operator/README.md");
        let table = readme
            .split("\n## Values\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a Values section");
        let documented: BTreeSet<String> = table
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(key, _)| key.to_owned())
            .filter(|key| key.chars().next().is_some_and(char::is_lowercase))
            .collect();
        let paths = values_yaml_paths();
        for key in &documented {
            assert!(paths.contains(key), "README documents unknown value {key}");
        }
        for path in &paths {
            let covered = documented.contains(path)
                || documented
                    .iter()
                    .any(|d| path.starts_with(&format!("{d}.")));
            // A group of values is documented through its members, checked in their own turn.
            let group = paths.iter().any(|p| p.starts_with(&format!("{path}.")));
            assert!(
                covered || group,
                "value {path} is missing from the README table"
            );
        }
    }

    #[test]
    fn schema_describes_every_value() {
        let schema: serde_json::Value =
            serde_json::from_str(&read("charts/cams-operator/values.schema.json"))
                .expect("values.schema.json");
        let values: Value =
            serde_yaml::from_str(&read("charts/cams-operator/values.yaml")).expect("values.yaml");
        fn walk(schema: &serde_json::Value, values: &Value, path: &str) {
            let Some(map) = values.as_mapping() else {
                return;
            };
            let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
                return; // a free-form object
            };
            for (k, v) in map {
                let key = k.as_str().expect("string key");
                let sub = properties
                    .get(key)
                    .unwrap_or_else(|| panic!("values.schema.json lacks {path}{key}"));
                walk(sub, v, &format!("{path}{key}."));
            }
            for key in properties.keys() {
                assert!(
                    key == "global" || map.contains_key(key.as_str()),
                    "values.schema.json describes {path}{key}, which values.yaml lacks"
                );
            }
        }
        walk(&schema, &values, "");
    }
}

/// The Argo CD health check, run by Debian's Lua 5.1 against every case of `health_test.yaml`.
/// The metric names the alert rules and the docs use are the ones `/metrics` exposes, and
/// `docs/operations.md` documents every metric.
mod metric_names {
    use super::support::*;
    use super::*;
    use cams_operator::metrics::{
        ActionLabels, CallLabels, ErrorLabels, Metrics, RESULT_SUCCESS, ReconcileLabels,
    };

    /// What `/metrics` exposes: each metric as users query it (`..._total` for counters, the
    /// base name for histograms and gauges), and every sample name.
    struct Exposed {
        metrics: BTreeSet<String>,
        samples: BTreeSet<String>,
    }

    fn exposed() -> Exposed {
        let m = Metrics::new();
        // Labelled families appear only once they have a series.
        let action = "ListChatGroup";
        m.cams_requests
            .get_or_create(&CallLabels { action, code: "OK" })
            .inc();
        m.cams_request_duration
            .get_or_create(&ActionLabels { action })
            .observe(0.1);
        m.cams_throttled
            .get_or_create(&ActionLabels { action })
            .inc();
        m.reconciles
            .get_or_create(&ReconcileLabels {
                result: RESULT_SUCCESS,
            })
            .inc();
        m.reconcile_errors
            .get_or_create(&ErrorLabels {
                category: "throttled",
            })
            .inc();
        let text = m.encode();
        let mut metrics = BTreeSet::new();
        let mut families = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                families += 1;
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                metrics.insert(match kind {
                    "counter" => format!("{name}_total"),
                    _ => name.to_owned(),
                });
            }
        }
        let registered = read("src/metrics.rs").matches("registry.register(").count();
        assert_eq!(
            families, registered,
            "every registered metric must be given a series above, so that it is checked"
        );
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| line.split(['{', ' ']).next())
            .map(str::to_owned)
            .collect();
        Exposed { metrics, samples }
    }

    /// Every `cams_operator_...` word of `text` (the bare prefix excluded).
    fn metric_words(text: &str) -> BTreeSet<&str> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("cams_operator_") && *word != "cams_operator_")
            .collect()
    }

    fn assert_known(file: &str, exposed: &Exposed) {
        let text = read(file);
        let words = metric_words(&text);
        assert!(!words.is_empty(), "{file} names no metric");
        for word in words {
            assert!(
                exposed.samples.contains(word) || exposed.metrics.contains(word),
                "{file} uses {word}, which the operator does not expose; exposed: {:?}",
                exposed.metrics
            );
        }
    }

    #[test]
    fn alert_rules_and_docs_use_exposed_names() {
        let exposed = exposed();
        for file in [
            "charts/cams-operator/templates/prometheusrule.yaml",
            "charts/cams-operator/README.md",
            "docs/operations.md",
        ] {
            assert_known(file, &exposed);
        }
    }

    #[test]
    fn operations_md_has_a_row_for_every_metric() {
        let exposed = exposed();
        let doc = read("docs/operations.md");
        let rows: BTreeSet<&str> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("| `cams_operator_"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(name, _)| name)
            .collect();
        for metric in &exposed.metrics {
            let short = metric.strip_prefix("cams_operator_").expect("prefixed");
            assert!(
                rows.contains(short),
                "docs/operations.md has no table row for {metric}"
            );
        }
    }

    #[test]
    fn a_wrong_name_is_caught() {
        let exposed = exposed();
        assert!(exposed.metrics.contains("cams_operator_cams_writes_total"));
        assert!(
            exposed
                .samples
                .contains("cams_operator_cams_request_duration_seconds_bucket")
        );
        let words = metric_words("rate(cams_operator_cams_writes[5m]) cams_operator_");
        assert_eq!(
            words.into_iter().collect::<Vec<_>>(),
            ["cams_operator_cams_writes"]
        );
        assert!(!exposed.samples.contains("cams_operator_cams_writes"));
        assert!(!exposed.metrics.contains("cams_operator_cams_writes"));
    }
}

mod argocd {
    use super::support::*;
    use super::*;

    const DIR: &str = "resource_customizations/cams.chatapp.io/ChatGroup";

    /// A Lua 5.1 string literal holding `text` byte for byte.
    fn lua_string(text: &str) -> String {
        let mut out = String::from("\"");
        for byte in text.bytes() {
            match byte {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                0x20..=0x7e => out.push(char::from(byte)),
                _ => out.push_str(&format!("\\{byte:03}")),
            }
        }
        out.push('"');
        out
    }

    /// The object as a Lua table constructor, the way Argo CD hands a resource to a health script
    /// (mappings become tables with string keys, sequences 1-based arrays, null nil).
    pub fn lua_value(value: &Value) -> String {
        match value {
            Value::Null => "nil".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i.to_string()
                } else {
                    format!("{:?}", n.as_f64().expect("a number"))
                }
            }
            Value::String(s) => lua_string(s),
            Value::Sequence(items) => {
                let items: Vec<String> = items.iter().map(lua_value).collect();
                format!("{{{}}}", items.join(", "))
            }
            Value::Mapping(map) => {
                let fields: Vec<String> = map
                    .iter()
                    .map(|(k, v)| {
                        let key = k.as_str().expect("string keys");
                        format!("[{}] = {}", lua_string(key), lua_value(v))
                    })
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            Value::Tagged(tagged) => lua_value(&tagged.value),
        }
    }

    /// Runs health.lua on `object` in a sandbox that offers only what Argo CD's Lua offers a
    /// health script (base functions plus the string, table and math libraries; no io, os,
    /// require or load), and returns (status, message).
    pub fn health(object: &Value) -> (String, String) {
        let script = support::root().join(DIR).join("health.lua");
        let harness = format!(
            r#"
local check = assert(loadfile({script}))
local sandbox = {{
  obj = {object},
  ipairs = ipairs, pairs = pairs, next = next, type = type,
  tostring = tostring, tonumber = tonumber, error = error, pcall = pcall,
  string = string, table = table, math = math,
}}
setfenv(check, sandbox)
local hs = check()
assert(type(hs) == "table", "health.lua must return a table")
io.write(tostring(hs.status), "\n", tostring(hs.message))
"#,
            script = lua_string(script.to_str().expect("utf-8 path")),
            object = lua_value(object),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("harness.lua");
        std::fs::write(&path, harness).expect("write harness");
        let out = run(&lua(), &[path.to_str().expect("utf-8 path")], None);
        assert!(out.ok, "lua5.1 failed: {}{}", out.stdout, out.stderr);
        let (status, message) = out.stdout.split_once('\n').expect("status and message");
        (status.to_owned(), message.to_owned())
    }

    fn tests() -> Vec<(String, String, String)> {
        let spec: Value =
            serde_yaml::from_str(&read(&format!("{DIR}/health_test.yaml"))).expect("tests");
        at(&spec, "tests")
            .and_then(Value::as_sequence)
            .expect("tests list")
            .iter()
            .map(|t| {
                (
                    str_at(t, "inputPath").to_owned(),
                    str_at(t, "healthStatus.status").to_owned(),
                    str_at(t, "healthStatus.message").to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn every_health_test_case_passes_in_lua_5_1() {
        let cases = tests();
        assert!(!cases.is_empty());
        for (input, status, message) in cases {
            let object: Value =
                serde_yaml::from_str(&read(&format!("{DIR}/{input}"))).expect("fixture");
            assert_eq!(
                str_at(&object, "apiVersion"),
                "cams.chatapp.io/v1alpha1",
                "{input}"
            );
            assert_eq!(kind(&object), "ChatGroup", "{input}");
            let got = health(&object);
            assert_eq!(got, (status, message), "{input}");
        }
    }

    #[test]
    fn cases_cover_every_health_status_and_every_fixture() {
        let cases = tests();
        let statuses: BTreeSet<&str> = cases.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            statuses,
            BTreeSet::from(["Degraded", "Healthy", "Progressing", "Suspended"])
        );
        let referenced: BTreeSet<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        let on_disk: BTreeSet<String> =
            std::fs::read_dir(support::root().join(DIR).join("testdata"))
                .expect("testdata")
                .map(|e| {
                    format!(
                        "testdata/{}",
                        e.expect("entry").file_name().to_string_lossy()
                    )
                })
                .collect();
        let on_disk: BTreeSet<&str> = on_disk.iter().map(String::as_str).collect();
        assert_eq!(
            referenced, on_disk,
            "every fixture has a case and vice versa"
        );
        // The reasons the fixtures use are the operator's own.
        let reasons: BTreeSet<&str> = cams_operator::crd::Reason::ALL
            .iter()
            .map(|r| r.as_str())
            .collect();
        for input in &referenced {
            let object: Value =
                serde_yaml::from_str(&read(&format!("{DIR}/{input}"))).expect("fixture");
            for condition in at(&object, "status.conditions")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let reason = str_at(condition, "reason");
                assert!(reasons.contains(reason), "{input}: unknown reason {reason}");
                let ty = str_at(condition, "type");
                assert!(
                    cams_operator::crd::condition::OWN.contains(&ty),
                    "{input}: unknown condition {ty}"
                );
            }
        }
    }

    /// The harness can fail: a script that returns the wrong verdict is caught.
    #[test]
    fn harness_sees_the_script_result() {
        let object: Value =
            serde_yaml::from_str(&read(&format!("{DIR}/testdata/healthy_synced.yaml")))
                .expect("fixture");
        assert_eq!(health(&object).0, "Healthy");
        let mut broken = object.clone();
        broken["status"]["conditions"][0]["status"] = Value::from("False");
        broken["status"]["conditions"][0]["reason"] = Value::from("CamsUnavailable");
        assert_eq!(health(&broken).0, "Progressing");
        assert_eq!(
            lua_value(&Value::from("a\"b\\c\nd\u{1}é")),
            "\"a\\\"b\\\\c\\nd\\001\\195\\169\""
        );
    }
}

/// The Dockerfile against the crate and the chart.
mod container {
    use super::support::*;
    use super::*;

    /// Instructions with continuation lines joined and comments dropped: (INSTRUCTION, rest).
    fn instructions() -> Vec<(String, String)> {
        let text = read("Dockerfile");
        let mut out = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            if let Some(body) = trimmed.strip_suffix('\\') {
                current.push_str(body);
                current.push(' ');
                continue;
            }
            current.push_str(trimmed);
            let (op, rest) = current.split_once(' ').unwrap_or((current.as_str(), ""));
            out.push((op.to_uppercase(), rest.trim().to_owned()));
            current.clear();
        }
        out
    }

    /// The `[[bin]]` name in Cargo.toml.
    fn cargo_bin_name() -> String {
        let manifest = read("Cargo.toml");
        let section = manifest
            .split("[[bin]]")
            .nth(1)
            .expect("Cargo.toml has a [[bin]] section");
        section
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once('=')?;
                (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
            })
            .expect("[[bin]] name")
    }

    /// The lines of the `[section]` of Cargo.toml, up to the next section.
    fn manifest_section(manifest: &str, section: &str) -> Vec<String> {
        manifest
            .lines()
            .skip_while(|l| l.trim() != section)
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with('['))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_image_leaves_the_test_helpers_out() {
        // The `testing` feature (fixture builders, the in-memory CAMS fake) is enabled only by
        // the dev-dependency on the package itself, which `cargo build --bin` does not use.
        let manifest = read("Cargo.toml");
        let features = manifest_section(&manifest, "[features]");
        assert!(
            features.iter().any(|l| l.starts_with("testing = ")),
            "a testing feature: {features:?}"
        );
        assert!(
            !features.iter().any(|l| l.starts_with("default")),
            "no default features: {features:?}"
        );
        let dev = manifest_section(&manifest, "[dev-dependencies]");
        assert!(
            dev.iter()
                .any(|l| l.starts_with("cams-operator = ") && l.contains("\"testing\"")),
            "the tests and benchmarks get the test helpers: {dev:?}"
        );
        let normal = manifest_section(&manifest, "[dependencies]");
        assert!(!normal.iter().any(|l| l.contains("testing")), "{normal:?}");
        let build = instructions()
            .into_iter()
            .find(|(op, rest)| op == "RUN" && rest.contains("cargo build"))
            .map(|(_, rest)| rest)
            .expect("a cargo build step");
        for flag in ["--features", "--all-features", "-F "] {
            assert!(!build.contains(flag), "cargo build {flag}: {build}");
        }
    }

    #[test]
    fn dockerfile_builds_and_runs_the_crate_binary() {
        let bin = cargo_bin_name();
        let built = Path::new(env!("CARGO_BIN_EXE_cams-operator"));
        assert_eq!(
            built.file_name().and_then(|n| n.to_str()),
            Some(bin.as_str())
        );

        let steps = instructions();
        let froms: Vec<&String> = steps
            .iter()
            .filter(|(op, _)| op == "FROM")
            .map(|(_, rest)| rest)
            .collect();
        assert!(froms.len() >= 2, "multi-stage");
        assert!(
            froms[0].to_lowercase().ends_with(" as builder") && froms[0].contains("rust:"),
            "the first stage is the Rust builder: {}",
            froms[0]
        );
        let runtime = froms.last().expect("runtime stage");
        assert!(
            runtime.starts_with("gcr.io/distroless/static")
                || runtime.starts_with("gcr.io/distroless/cc"),
            "distroless runtime: {runtime}"
        );
        assert!(runtime.ends_with(":nonroot"), "nonroot variant: {runtime}");

        let workdir = steps
            .iter()
            .find(|(op, _)| op == "WORKDIR")
            .map(|(_, rest)| rest.clone())
            .expect("builder WORKDIR");
        let build = steps
            .iter()
            .find(|(op, rest)| op == "RUN" && rest.contains("cargo build"))
            .map(|(_, rest)| rest)
            .expect("a cargo build step");
        for needle in ["--release", "--locked", &format!("--bin {bin}")] {
            assert!(build.contains(needle), "cargo build {needle}: {build}");
        }
        let copy = steps
            .iter()
            .find(|(op, rest)| op == "COPY" && rest.starts_with("--from=builder"))
            .map(|(_, rest)| rest)
            .expect("COPY --from=builder");
        let parts: Vec<&str> = copy.split_whitespace().collect();
        assert_eq!(parts.len(), 3, "{copy}");
        assert_eq!(parts[1], format!("{workdir}/target/release/{bin}"));
        let installed = parts[2];
        assert!(installed.ends_with(&format!("/{bin}")));

        let entrypoint = steps
            .iter()
            .rfind(|(op, _)| op == "ENTRYPOINT")
            .map(|(_, rest)| rest)
            .expect("ENTRYPOINT");
        let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("exec form");
        assert_eq!(entrypoint, [installed, "run"]);

        let user = steps
            .iter()
            .rfind(|(op, _)| op == "USER")
            .map(|(_, rest)| rest.clone())
            .expect("USER");
        let (uid, gid) = user.split_once(':').expect("USER uid:gid");
        let uid: u32 = uid.parse().expect("numeric uid (runAsNonRoot needs one)");
        let gid: u32 = gid.parse().expect("numeric gid");
        assert!(uid != 0 && gid != 0, "non-root");
        let values: Value =
            serde_yaml::from_str(&read("charts/cams-operator/values.yaml")).expect("values.yaml");
        assert_eq!(
            at(&values, "securityContext.runAsUser").and_then(Value::as_u64),
            Some(u64::from(uid)),
            "the chart runs as the image's user"
        );

        // The ports the image declares are the operator's default listen ports.
        let exposed: BTreeSet<u16> = steps
            .iter()
            .filter(|(op, _)| op == "EXPOSE")
            .flat_map(|(_, rest)| rest.split_whitespace().map(|p| p.parse().expect("port")))
            .collect();
        let defaults = common::parse_run_args(&[]);
        assert_eq!(
            exposed,
            BTreeSet::from([defaults.metrics_addr.port(), defaults.health_addr.port()])
        );
    }

    #[test]
    fn dockerignore_keeps_sources_and_drops_build_output() {
        let ignored: BTreeSet<String> = read(".dockerignore")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        for must in ["target", ".git", ".venv", ".tools"] {
            assert!(ignored.contains(must), ".dockerignore drops {must}");
        }
        for keep in ["src", "Cargo.toml", "Cargo.lock", "crds"] {
            assert!(
                !ignored
                    .iter()
                    .any(|p| p == keep || p.starts_with(&format!("{keep}/"))),
                ".dockerignore keeps {keep}"
            );
        }
    }

    #[test]
    fn tls_is_rustls_only() {
        let lock = read("Cargo.lock");
        for banned in ["openssl", "openssl-sys", "native-tls"] {
            assert!(
                !lock.contains(&format!("name = \"{banned}\"")),
                "Cargo.lock pulls in {banned}; the image has no OpenSSL"
            );
        }
        assert!(lock.contains("name = \"rustls\""));
    }
}
