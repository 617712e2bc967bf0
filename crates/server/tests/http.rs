//! HTTP endpoints: health, dev-mode helpers, static files.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use calling_protocol::ServerMessage;
use calling_server::{usersig, Config, DEV_SDK_APP_ID};
use common::*;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(router: &Router, uri: &str) -> (StatusCode, Option<String>, Option<String>, Vec<u8>) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let header_of = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let content_type = header_of(header::CONTENT_TYPE);
    let cors = header_of(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, content_type, cors, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn healthz_says_ok() {
    let router = calling_server::app(config());
    let (status, _, _, body) = get(&router, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"ok");
}

#[tokio::test]
async fn dev_mode_hands_out_working_user_sigs() {
    let server = start(Config::new(Vec::new())).await;
    // A router over the same configuration (same dev key) for the plain HTTP requests.
    let router = calling_server::app(server.hub.config.clone());
    let (status, _, cors, body) = get(&router, "/dev/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cors.as_deref(), Some("*"));
    assert_eq!(
        json(&body),
        serde_json::json!({ "sdkAppID": DEV_SDK_APP_ID })
    );

    let (status, content_type, cors, body) =
        get(&router, "/dev/usersig?sdkAppID=1400000000&userID=alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(cors.as_deref(), Some("*"));
    let reply = json(&body);
    assert_eq!(reply["sdkAppID"], DEV_SDK_APP_ID);
    assert_eq!(reply["userID"], "alice");
    let user_sig = reply["userSig"].as_str().unwrap().to_string();
    let (_, key) = server.hub.config.dev_app().unwrap();
    assert!(usersig::verify(&user_sig, DEV_SDK_APP_ID, "alice", key, now_unix()).is_ok());

    // And the server accepts it for a login.
    let mut c = Client::connect(server.addr).await;
    c.send(&calling_protocol::ClientMessage::Login {
        sdk_app_id: DEV_SDK_APP_ID,
        user_id: "alice".into(),
        user_sig,
        protocol_version: calling_protocol::PROTOCOL_VERSION,
    })
    .await;
    assert!(matches!(c.recv().await, ServerMessage::LoginOk(_)));

    for bad in [
        "/dev/usersig?sdkAppID=1400000000&userID=al%20ice",
        "/dev/usersig?sdkAppID=1400000001&userID=alice",
        "/dev/usersig?sdkAppID=x&userID=alice",
        "/dev/usersig",
    ] {
        let (status, _, cors, _) = get(&router, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(cors.as_deref(), Some("*"));
    }
}

#[tokio::test]
async fn dev_endpoints_do_not_exist_with_configured_apps() {
    let router = calling_server::app(config());
    for uri in [
        "/dev/usersig?sdkAppID=1400000001&userID=alice",
        "/dev/config",
    ] {
        assert_eq!(get(&router, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn static_files_and_the_package_are_served() {
    let www = tempfile::tempdir().unwrap();
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(www.path().join("app.js"), "export {}").unwrap();
    std::fs::write(pkg.path().join("sdk_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(pkg.path().join("sdk.js"), "export default 1").unwrap();
    let mut config = config();
    config.www = Some(www.path().to_path_buf());
    config.pkg = Some(pkg.path().to_path_buf());
    let router = calling_server::app(config);

    let (status, content_type, _, body) = get(&router, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/html"));
    assert_eq!(body, b"<h1>demo</h1>");
    let (_, content_type, _, _) = get(&router, "/app.js").await;
    assert!(content_type.unwrap().contains("javascript"));
    let (status, content_type, _, body) = get(&router, "/pkg/sdk_bg.wasm").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/wasm"));
    assert_eq!(body, b"\0asm\x01\0\0\0");
    assert_eq!(get(&router, "/pkg/sdk.js").await.0, StatusCode::OK);
    assert_eq!(
        get(&router, "/pkg/missing.js").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&router, "/missing.html").await.0, StatusCode::NOT_FOUND);
    // The WebSocket and health routes win over static files.
    assert_eq!(get(&router, "/healthz").await.2, None);
    assert_eq!(get(&router, "/healthz").await.3, b"ok");
}

#[tokio::test]
async fn without_www_unknown_paths_are_404() {
    let router = calling_server::app(config());
    assert_eq!(get(&router, "/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&router, "/pkg/x.wasm").await.0, StatusCode::NOT_FOUND);
}
