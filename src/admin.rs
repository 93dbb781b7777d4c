//! The admin endpoints: `/livez` and `/readyz` on the health address, `/metrics` (Prometheus
//! text format) on the metrics address. Both addresses may be the same.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// Liveness path.
pub const LIVEZ_PATH: &str = "/livez";
/// Readiness path: 200 only after the first list of ChatGroups completed, and while no
/// permission problem stops the operator's work.
pub const READYZ_PATH: &str = "/readyz";
/// Prometheus metrics path.
pub const METRICS_PATH: &str = "/metrics";

/// Shared readiness: set once the controller's first list has completed, and withdrawn while
/// a problem only a person can fix stops the operator's work (a permission the API server
/// refuses), with the reason `/readyz` answers.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    listed: Arc<AtomicBool>,
    problems: Arc<Mutex<BTreeMap<&'static str, String>>>,
}

impl Readiness {
    /// Marks the first list done.
    pub fn set_ready(&self) {
        self.listed.store(true, Ordering::SeqCst);
    }

    /// Whether the operator is ready: the first list done and no problem reported.
    pub fn is_ready(&self) -> bool {
        self.listed.load(Ordering::SeqCst) && self.problems().is_empty()
    }

    /// Reports a problem with `operation` (a fixed phrase such as `"patch ChatGroup status"`);
    /// `/readyz` fails with `reason` until the operation succeeds again.
    pub fn report_problem(&self, operation: &'static str, reason: String) {
        self.lock().insert(operation, reason);
    }

    /// Clears the problem of `operation`, if any: it succeeded.
    pub fn clear_problem(&self, operation: &'static str) {
        self.lock().remove(operation);
    }

    /// The problems reported, by operation.
    pub fn problems(&self) -> BTreeMap<&'static str, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Errors of the admin server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} for the admin endpoints: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A bound admin listener; [`AdminServer::serve`] runs it.
pub struct AdminServer {
    listener: TcpListener,
    readiness: Readiness,
    metrics: Metrics,
}

impl AdminServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(
        addr: SocketAddr,
        readiness: Readiness,
        metrics: Metrics,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(AdminServer {
            listener,
            readiness,
            metrics,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let readiness = self.readiness.clone();
            let metrics = self.metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let response = respond(req.uri().path(), &readiness, &metrics);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

fn respond(path: &str, readiness: &Readiness, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        LIVEZ_PATH => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        READYZ_PATH if readiness.is_ready() => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
        READYZ_PATH if !readiness.problems().is_empty() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            readiness
                .problems()
                .iter()
                .map(|(operation, reason)| format!("cannot {operation}: {reason}\n"))
                .collect(),
        ),
        READYZ_PATH => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "waiting for the first list of ChatGroups\n".to_owned(),
        ),
        METRICS_PATH => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}
