//! The front end, embedded: `assets/index.html` as written, and `assets/app.js` and `app.css` as
//! bundled by `web/build.mjs` from the TypeScript in `web/src` (committed, so that `cargo build`
//! needs no npm; `.ci/run` rebuilds them and fails if the committed copies differ).

use axum::extract::Path as UrlPath;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::guard::error;

/// Every file the front end has, by the name it is asked for: a fixed table, never a path.
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
];

/// The page that loads the front end.
pub(crate) async fn index() -> Response {
    file("text/html; charset=utf-8", include_bytes!("../assets/index.html"))
}

/// One of [`FILES`].
pub(crate) async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    match FILES.iter().find(|(known, _, _)| *known == name) {
        Some((_, content_type, bytes)) => file(content_type, bytes),
        None => error(StatusCode::NOT_FOUND, "no such file"),
    }
}

fn file(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
