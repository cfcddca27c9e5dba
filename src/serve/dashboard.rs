//! The operator dashboard, embedded in the binary: content types, cache headers, SPA fallback.
//!
//! Hashed files under `assets/` are cached as immutable; `index.html` is never cached; a path without a
//! file extension that matches no file is a client-side route and gets `index.html`; any other unknown
//! path is 404. A release build refuses to compile without a built frontend (see `build.rs`).

use http::{header, HeaderValue, StatusCode};
use rust_embed::RustEmbed;

use crate::error::Error;

#[derive(RustEmbed)]
#[folder = "frontend/dist"]
#[allow_missing = true]
struct Assets;

const INDEX: &str = "index.html";

#[cfg(test)]
/// Whether a dashboard was embedded (false only in debug builds made without `make frontend`).
pub fn is_embedded() -> bool {
    Assets::get(INDEX).is_some()
}

/// Serves `path` (the request path) from the embedded dashboard.
pub fn serve(path: &str, frame_ancestors: &HeaderValue) -> warp::reply::Response {
    let relative = path.trim_start_matches('/');
    let mut response = if relative.is_empty() || relative == INDEX {
        index()
    } else if let Some(file) = Assets::get(relative) {
        let immutable = relative.starts_with("assets/");
        file_response(relative, file.data.into_owned(), immutable)
    } else if looks_like_a_file(relative) {
        Error::NotFound(format!("no dashboard file {path}")).into_response()
    } else {
        index()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, frame_ancestors.clone());
    response
}

fn looks_like_a_file(relative: &str) -> bool {
    relative.starts_with("assets/")
        || relative
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
}

fn index() -> warp::reply::Response {
    match Assets::get(INDEX) {
        Some(file) => {
            let mut response = file_response(INDEX, file.data.into_owned(), false);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => {
            // Only reachable in a debug build: build.rs refuses release builds without the frontend.
            let mut response = warp::reply::Response::new(
                "<!doctype html><title>Dashboard not built</title><h1>Dashboard not built</h1>\
                 <p>This debug binary was compiled without the dashboard. Run <code>make frontend</code> \
                 and rebuild. The MLflow UI is at <a href=\"/mlflow/\">/mlflow/</a>.</p>"
                    .into(),
            );
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
    }
}

fn file_response(name: &str, data: Vec<u8>, immutable: bool) -> warp::reply::Response {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let mut response = warp::reply::Response::new(data.into());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csp() -> HeaderValue {
        HeaderValue::from_static("frame-ancestors 'self'")
    }

    #[test]
    fn unknown_files_are_404_and_routes_fall_back_to_index() {
        let missing = serve("/assets/nope-1234.js", &csp());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let missing = serve("/favicon-nope.ico", &csp());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let route = serve("/experiments/1/runs", &csp());
        let index = serve("/", &csp());
        assert_eq!(route.status(), index.status());
        assert_eq!(
            route.headers().get(header::CONTENT_TYPE),
            index.headers().get(header::CONTENT_TYPE)
        );
        assert_eq!(route.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[test]
    fn index_is_never_cached_and_assets_are_immutable() {
        if !is_embedded() {
            // Debug build without a frontend: the explicit "not built" page.
            assert_eq!(serve("/", &csp()).status(), StatusCode::SERVICE_UNAVAILABLE);
            return;
        }
        let index = serve("/", &csp());
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(index.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let asset = Assets::iter()
            .find(|name| name.starts_with("assets/") && name.ends_with(".js"))
            .expect("a built dashboard has hashed JS assets");
        let response = serve(&format!("/{asset}"), &csp());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript"));
    }
}
