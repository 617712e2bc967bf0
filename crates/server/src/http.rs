//! HTTP routes: the WebSocket endpoint, health check, metrics, dev-mode helpers and static files.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use calling_protocol::user_id;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::gate::Permit;
use crate::hub::Hub;
use crate::socket::{self, TRANSPORT_LIMIT_BYTES};
use crate::static_files;
use crate::usersig;

/// Lifetime of UserSigs handed out by `/dev/usersig`.
pub const DEV_USER_SIG_LIFETIME_SECS: u64 = 24 * 3600;

/// Initial read buffer of each WebSocket; grows only for large frames.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The router for one hub.
pub fn router(hub: Arc<Hub>) -> Router {
    let mut router = Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(health))
        .route("/dev/usersig", get(dev_user_sig))
        .route("/dev/config", get(dev_config));
    if hub.config.metrics_on_main {
        router = router.route("/metrics", get(metrics));
    }
    if let Some(pkg) = &hub.config.pkg {
        router = router.nest_service("/pkg", static_files::service(pkg));
    }
    if let Some(www) = &hub.config.www {
        router = router.fallback_service(static_files::service(www));
    }
    // Browsers never guess a type other than the one sent (a file served as text stays text).
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(hub)
}

/// A router serving only `/metrics`, for a listener of its own (`--metrics-listen`).
pub fn metrics_router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(hub)
}

/// The Prometheus text exposition (format 0.0.4).
async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    match hub.metrics_text() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// Readiness for a load balancer: 200 while serving, 503 from the moment the drain begins (the
/// node is going away; send new clients elsewhere).
async fn health(State(hub): State<Arc<Hub>>) -> Response {
    if hub.drain.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if hub.cluster().is_some_and(|c| !c.is_ready()) {
        let why = "the cluster's shared registry (Redis) is unreachable\n";
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    } else {
        "ok".into_response()
    }
}

/// A draining server's answer to a new WebSocket: 503, and when to try again.
fn draining_refusal(hub: &Hub) -> Response {
    let retry_after = HeaderValue::from(hub.drain.retry_after_secs());
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, retry_after)],
        "draining: this server takes no new connections\n",
    )
        .into_response()
}

async fn websocket(
    ws: WebSocketUpgrade,
    State(hub): State<Arc<Hub>>,
    permit: Option<Extension<Arc<Permit>>>,
) -> Response {
    if hub.drain.is_draining() {
        return draining_refusal(&hub);
    }
    let permit = permit.map(|Extension(p)| p);
    // Tens of thousands of mostly idle sessions: a small read buffer (tungstenite's default is
    // 128 KiB, allocated per connection up front) keeps a session's memory in a few KiB.
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(TRANSPORT_LIMIT_BYTES)
        .max_frame_size(TRANSPORT_LIMIT_BYTES)
        .on_upgrade(move |socket| socket::run(socket, hub, permit))
}

/// Whether a page at `origin` may read dev answers: pages served by this server (the demo) and
/// pages on this machine (the browser tests load theirs from another localhost port). Anything
/// else is a website the developer happens to visit, which must not mint UserSigs.
fn dev_origin_allowed(origin: &str, host: Option<&str>) -> bool {
    let Ok(uri) = origin.parse::<axum::http::Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    if !matches!(scheme, "http" | "https") || uri.path() != "/" && !uri.path().is_empty() {
        return false;
    }
    if host.is_some_and(|h| h.eq_ignore_ascii_case(authority.as_str())) {
        return true;
    }
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A dev answer, or a 403 for a page of a foreign origin.
fn dev_json(headers: &HeaderMap, status: StatusCode, body: serde_json::Value) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN);
    let allowed = match origin {
        // Same-origin GETs and non-browser clients send no Origin.
        None => None,
        Some(origin) => match origin.to_str() {
            Ok(text) if dev_origin_allowed(text, host) => Some(origin.clone()),
            _ => {
                let mut refused = (
                    StatusCode::FORBIDDEN,
                    Json(json!({"error": "dev endpoints answer only pages of this server or of localhost"})),
                )
                    .into_response();
                refused
                    .headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("origin"));
                return refused;
            }
        },
    };
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

#[derive(Deserialize)]
struct UserSigQuery {
    #[serde(rename = "sdkAppID")]
    sdk_app_id: Option<u64>,
    #[serde(rename = "userID")]
    user_id: String,
}

async fn dev_user_sig(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    query: Result<Query<UserSigQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some((app, key)) = hub.config.dev_app() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(Query(query)) = query else {
        return dev_json(
            &headers,
            StatusCode::BAD_REQUEST,
            json!({"error": "expected ?sdkAppID=<number>&userID=<id>"}),
        );
    };
    if query.sdk_app_id.is_some_and(|id| id != app) {
        return dev_json(
            &headers,
            StatusCode::BAD_REQUEST,
            json!({"error": format!("this dev server's SDKAppID is {app}")}),
        );
    }
    if !user_id::is_valid(&query.user_id) {
        return dev_json(
            &headers,
            StatusCode::BAD_REQUEST,
            json!({"error": format!("userID must be {}", user_id::RULE)}),
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let lifetime = hub
        .config
        .sig_policy
        .max_lifetime_secs
        .map_or(DEV_USER_SIG_LIFETIME_SECS, |max| {
            max.min(DEV_USER_SIG_LIFETIME_SECS)
        });
    let user_sig = usersig::generate(app, key, &query.user_id, now, lifetime, None);
    dev_json(
        &headers,
        StatusCode::OK,
        json!({"userSig": user_sig, "sdkAppID": app, "userID": query.user_id}),
    )
}

async fn dev_config(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    match hub.config.dev_app() {
        Some((app, _)) => dev_json(&headers, StatusCode::OK, json!({ "sdkAppID": app })),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
