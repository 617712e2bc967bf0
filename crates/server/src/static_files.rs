//! Static files (`--www`, `--pkg`), confined to their directory: no dotfiles (`.git`, `.env`)
//! and nothing reached through a symlink that leads out of the directory.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use percent_encoding::percent_decode_str;
use tower_http::services::ServeDir;

/// A router serving `dir`, refusing (404) any path that is not inside it.
pub fn service(dir: &Path) -> Router {
    // Resolved once: every request's path is compared with the real location of the root.
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Router::new()
        .fallback_service(ServeDir::new(&root))
        .layer(middleware::from_fn_with_state(Arc::new(root), confine))
}

async fn confine(State(root): State<Arc<PathBuf>>, request: Request, next: Next) -> Response {
    let inside = match relative_path(request.uri().path()) {
        Some(relative) => resolves_inside(&root, &relative).await.unwrap_or(false),
        None => false,
    };
    if inside {
        next.run(request).await
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The request path as a relative file path, or `None` when it names a dotfile or dot
/// directory (which includes `..`) or does not decode.
fn relative_path(uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(uri_path).decode_utf8().ok()?;
    let mut relative = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains('\\') || segment.contains('\0') {
            return None;
        }
        relative.push(segment);
    }
    Some(relative)
}

fn is_dotted(path: &Path) -> bool {
    path.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => true,
    })
}

/// Whether the file (or a directory's `index.html`) is really inside `root`, symlinks resolved,
/// and not a dotfile there either. A missing file counts as inside (it is then a plain 404).
async fn resolves_inside(root: &Path, relative: &Path) -> io::Result<bool> {
    let real = match tokio::fs::canonicalize(root.join(relative)).await {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let Ok(inner) = real.strip_prefix(root) else {
        return Ok(false);
    };
    if is_dotted(inner) {
        return Ok(false);
    }
    if tokio::fs::metadata(&real).await?.is_dir() {
        return Box::pin(resolves_inside(root, &inner.join("index.html"))).await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_bad_encodings_are_refused() {
        assert_eq!(relative_path("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(relative_path("/"), Some(PathBuf::new()));
        for bad in [
            "/.env",
            "/.git/config",
            "/a/../b",
            "/%2e%2e/etc/passwd",
            "/a/%2egit",
            "/%ff",
            "/a%5cb",
        ] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
    }
}
