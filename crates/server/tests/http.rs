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
    get_from(router, uri, None).await
}

/// A GET as a page at `origin` makes it (`None`: same-origin or not a browser).
async fn get_from(
    router: &Router,
    uri: &str,
    origin: Option<&str>,
) -> (StatusCode, Option<String>, Option<String>, Vec<u8>) {
    let mut request = Request::get(uri).header(header::HOST, "127.0.0.1:8080");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers().get(header::X_CONTENT_TYPE_OPTIONS),
        Some(&header::HeaderValue::from_static("nosniff")),
        "{uri}: every response says nosniff"
    );
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
    assert_eq!(cors, None, "same-origin: nothing to allow");
    assert_eq!(
        json(&body),
        serde_json::json!({ "sdkAppID": DEV_SDK_APP_ID })
    );

    let (status, content_type, cors, body) =
        get(&router, "/dev/usersig?sdkAppID=1400000000&userID=alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(cors, None);
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
        resumable: false,
    })
    .await;
    assert!(matches!(c.recv().await, ServerMessage::LoginOk(_)));

    for bad in [
        "/dev/usersig?sdkAppID=1400000000&userID=al%20ice",
        "/dev/usersig?sdkAppID=1400000001&userID=alice",
        "/dev/usersig?sdkAppID=x&userID=alice",
        "/dev/usersig",
    ] {
        let (status, _, cors, _) = get_from(&router, bad, Some("http://localhost:9000")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(cors.as_deref(), Some("http://localhost:9000"));
    }
}

#[tokio::test]
async fn dev_user_sigs_only_for_pages_of_this_server_or_localhost() {
    let router = calling_server::app(Config::new(Vec::new()));
    let uri = "/dev/usersig?sdkAppID=1400000000&userID=alice";
    for origin in [
        "http://127.0.0.1:8080",
        "http://localhost:5173",
        "https://localhost",
        "http://127.0.0.2:9000",
        "http://[::1]:3000",
        "http://app.localhost:8000",
    ] {
        let (status, _, cors, body) = get_from(&router, uri, Some(origin)).await;
        assert_eq!(status, StatusCode::OK, "{origin}");
        assert_eq!(cors.as_deref(), Some(origin), "{origin}");
        assert!(json(&body)["userSig"].is_string());
    }
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io:8080",
        "null",
        "file://",
        "http://192.0.2.1:8080",
    ] {
        for path in [uri, "/dev/config"] {
            let (status, _, cors, body) = get_from(&router, path, Some(origin)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{origin} {path}");
            assert_eq!(cors, None, "{origin} {path}");
            assert!(
                !String::from_utf8_lossy(&body).contains("userSig"),
                "{origin} {path}"
            );
        }
    }
}

#[tokio::test]
async fn dev_user_sigs_respect_the_maximum_lifetime() {
    let mut config = Config::new(Vec::new());
    config.sig_policy.max_lifetime_secs = Some(600);
    let router = calling_server::app(config.clone());
    let (_, _, _, body) = get(&router, "/dev/usersig?sdkAppID=1400000000&userID=alice").await;
    let user_sig = json(&body)["userSig"].as_str().unwrap().to_string();
    assert_eq!(usersig::decode(&user_sig).unwrap().expire, 600);
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

#[cfg(unix)]
#[tokio::test]
async fn static_files_stay_inside_their_directory() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(www.path().join(".env"), "KEY=secret").unwrap();
    std::fs::create_dir(www.path().join(".git")).unwrap();
    std::fs::write(www.path().join(".git/config"), "secret").unwrap();
    std::fs::create_dir(www.path().join("js")).unwrap();
    std::fs::write(www.path().join("js/app.js"), "export {}").unwrap();
    let link = |target: &std::path::Path, name: &str| {
        std::os::unix::fs::symlink(target, www.path().join(name)).unwrap()
    };
    link(&outside.path().join("secret.txt"), "leak.txt");
    link(outside.path(), "escape");
    link(&www.path().join("js/app.js"), "app-link.js");
    link(&www.path().join(".env"), "env.txt");
    let mut config = config();
    config.www = Some(www.path().to_path_buf());
    let router = calling_server::app(config);

    for uri in [
        "/.env",
        "/.git/config",
        "/%2Eenv",
        "/js/../.env",
        "/leak.txt",
        "/escape/secret.txt",
        "/escape/",
        "/env.txt",
    ] {
        let (status, _, _, body) = get(&router, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{uri}");
    }
    // Symlinks that stay inside, and plain files, are served.
    assert_eq!(get(&router, "/app-link.js").await.3, b"export {}");
    assert_eq!(get(&router, "/js/app.js").await.3, b"export {}");
    assert_eq!(get(&router, "/").await.3, b"<h1>demo</h1>");
}

#[tokio::test]
async fn without_www_unknown_paths_are_404() {
    let router = calling_server::app(config());
    assert_eq!(get(&router, "/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&router, "/pkg/x.wasm").await.0, StatusCode::NOT_FOUND);
}
