//! HTTP routes: the WebSocket endpoint, health check, dev-mode helpers and static files.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower_http::services::ServeDir;

use crate::hub::Hub;
use crate::registry::valid_user_id;
use crate::socket::{self, TRANSPORT_LIMIT_BYTES};
use crate::usersig;

/// Lifetime of UserSigs handed out by `/dev/usersig`.
pub const DEV_USER_SIG_LIFETIME_SECS: u64 = 24 * 3600;

/// Initial read buffer of each WebSocket; grows only for large frames.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The router for one hub.
pub fn router(hub: Arc<Hub>) -> Router {
    let mut router = Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(|| async { "ok" }))
        .route("/dev/usersig", get(dev_user_sig))
        .route("/dev/config", get(dev_config));
    if let Some(pkg) = &hub.config.pkg {
        router = router.nest_service("/pkg", ServeDir::new(pkg));
    }
    if let Some(www) = &hub.config.www {
        router = router.fallback_service(ServeDir::new(www));
    }
    router.with_state(hub)
}

async fn websocket(ws: WebSocketUpgrade, State(hub): State<Arc<Hub>>) -> Response {
    // Tens of thousands of mostly idle sessions: a small read buffer (tungstenite's default is
    // 128 KiB, allocated per connection up front) keeps a session's memory in a few KiB.
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(TRANSPORT_LIMIT_BYTES)
        .max_frame_size(TRANSPORT_LIMIT_BYTES)
        .on_upgrade(move |socket| socket::run(socket, hub))
}

/// Browser tests load pages from another localhost port, so dev answers allow any origin.
fn dev_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
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
    query: Result<Query<UserSigQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some((app, key)) = hub.config.dev_app() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(Query(query)) = query else {
        return dev_json(
            StatusCode::BAD_REQUEST,
            json!({"error": "expected ?sdkAppID=<number>&userID=<id>"}),
        );
    };
    if query.sdk_app_id.is_some_and(|id| id != app) {
        return dev_json(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("this dev server's SDKAppID is {app}")}),
        );
    }
    if !valid_user_id(&query.user_id) {
        return dev_json(
            StatusCode::BAD_REQUEST,
            json!({"error": "userID must be 1-32 letters, digits, '-' or '_'"}),
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let user_sig = usersig::generate(
        app,
        key,
        &query.user_id,
        now,
        DEV_USER_SIG_LIFETIME_SECS,
        None,
    );
    dev_json(
        StatusCode::OK,
        json!({"userSig": user_sig, "sdkAppID": app, "userID": query.user_id}),
    )
}

async fn dev_config(State(hub): State<Arc<Hub>>) -> Response {
    match hub.config.dev_app() {
        Some((app, _)) => dev_json(StatusCode::OK, json!({ "sdkAppID": app })),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
