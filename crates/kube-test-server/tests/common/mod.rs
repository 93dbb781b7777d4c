//! Support shared by the crate's integration tests: the project's ChatGroup CRD, kube-rs
//! handles for it, and a tiny HTTP/1.1 client for the tests that need the exact status line,
//! headers or body of an answer. Each test binary uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Client;
use kube::api::{Api, WatchEvent};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube_test_server::{ResourceKind, TestApiServer, TestApiServerBuilder};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The project's ChatGroup CRD, as the operator's chart installs it.
pub const CRD: &str = include_str!("../../../../crds/chatgroup.yaml");

/// Upper bound for anything a test waits for; never reached when the server works.
pub const WAIT: Duration = Duration::from_secs(10);

/// The ChatGroup kind the CRD defines.
pub fn chatgroups() -> ResourceKind {
    let crd: Value = serde_yaml::from_str(CRD).expect("the CRD parses");
    ResourceKind::from_crd(&crd).expect("the CRD defines a kind")
}

/// A builder serving ChatGroups from the CRD.
pub fn builder() -> TestApiServerBuilder {
    TestApiServer::builder().crd(CRD)
}

/// A server serving ChatGroups, and an administrator's client.
pub async fn start() -> (TestApiServer, Client) {
    builder().start().await
}

/// The kube-rs description of ChatGroups.
pub fn chat_group_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("cams.chatapp.io", "v1alpha1", "ChatGroup");
    ApiResource::from_gvk_with_plural(&gvk, "chatgroups")
}

/// ChatGroups in one namespace.
pub fn groups(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &chat_group_resource())
}

/// ChatGroups in every namespace.
pub fn all_groups(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &chat_group_resource())
}

/// The spec every valid ChatGroup here starts from.
pub fn spec() -> Value {
    json!({
        "custSpaceId": "cams-8f2k1x",
        "businessNumber": "8613800001234",
        "groupId": "EA303XXXXX",
        "subject": "Support",
    })
}

/// A valid ChatGroup named `name`, as JSON.
pub fn chat_group(name: &str) -> Value {
    json!({
        "apiVersion": "cams.chatapp.io/v1alpha1",
        "kind": "ChatGroup",
        "metadata": {"name": name},
        "spec": spec(),
    })
}

/// A JSON object as kube-rs' dynamic object.
pub fn dynamic(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("a Kubernetes object")
}

/// A kube-rs object back as JSON.
pub fn json_of(object: &impl serde::Serialize) -> Value {
    serde_json::to_value(object).expect("serializable")
}

/// The `Status` of a failed kube-rs call.
pub fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// `metadata.resourceVersion` of an object.
pub fn rv(object: &Value) -> String {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no resourceVersion in {object}"))
        .to_owned()
}

/// `metadata.name` of an object.
pub fn name(object: &Value) -> String {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no name in {object}"))
        .to_owned()
}

/// The next watch event that is not a bookmark.
pub async fn next_change<K>(
    stream: &mut (impl Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    loop {
        let event = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a watch event in time")
            .expect("the watch stream is open")
            .expect("a well-formed watch event");
        if !matches!(event, WatchEvent::Bookmark(_)) {
            return event;
        }
    }
}

/// The next item of a stream that must not end.
pub async fn next_item<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a stream item in time")
        .expect("the stream is open")
}

/// An HTTP answer as it came over the wire.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }

    /// The body as JSON lines (a watch stream).
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON watch event"))
            .collect()
    }
}

/// One HTTP/1.1 request over a fresh connection, read to its end. `headers` come on top
/// of `Host`, `Connection: close` and `Content-Length`.
pub async fn send(
    server: &TestApiServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(server.addr())
        .await
        .expect("connect to the test API server");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.addr(),
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream.write_all(body).await.expect("send the body");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("the answer ends in time")
        .expect("read the answer");
    parse(&raw)
}

/// [`send`] with a JSON body.
pub async fn send_json(server: &TestApiServer, method: &str, path: &str, body: &Value) -> Reply {
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    send(
        server,
        method,
        path,
        &[("Content-Type", content_type)],
        body.to_string().as_bytes(),
    )
    .await
}

/// [`send`] as a GET.
pub async fn get(server: &TestApiServer, path: &str) -> Reply {
    send(server, "GET", path, &[], b"").await
}

fn parse(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header block");
    let head = String::from_utf8(raw[..end].to_vec()).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("a status code in {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// The data of the complete chunks in `raw`.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("a chunk size, not {size_text:?}"));
        let start = line_end + 2;
        if size == 0 || raw.len() < start + size + 2 {
            return out;
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// The first event of a watch (`path` with its query), read as soon as it arrives; `Null`
/// when the stream ends without one.
pub async fn first_watch_event(server: &TestApiServer, path: &str) -> Value {
    let mut stream = TcpStream::connect(server.addr())
        .await
        .expect("connect to the test API server");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = tokio::time::timeout(WAIT, stream.read(&mut buffer))
            .await
            .expect("the watch answers in time")
            .expect("read the watch");
        if read == 0 {
            return Value::Null;
        }
        raw.extend_from_slice(&buffer[..read]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let body = dechunk(&raw[end + 4..]);
        if let Some(line_end) = body.iter().position(|b| *b == b'\n') {
            return serde_json::from_slice(&body[..line_end]).expect("a JSON watch event");
        }
    }
}

/// Path of the ChatGroup collection in a namespace.
pub fn groups_path(namespace: &str) -> String {
    format!("/apis/cams.chatapp.io/v1alpha1/namespaces/{namespace}/chatgroups")
}

/// Path of one ChatGroup.
pub fn group_path(namespace: &str, name: &str) -> String {
    format!("{}/{name}", groups_path(namespace))
}
