//! The checks every request passes before a handler runs, and the headers every response gets.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::State;

/// The environment variable `regimen ui --token` reads when the flag is absent.
pub const TOKEN_ENV: &str = "REGIMEN_UI_TOKEN";

/// Only the server's own scripts, styles, images and API; no framing, no forms elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A JSON error response.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Refuses a request from an unknown `Host`, without the token, or (when it changes state) from
/// another origin or with a body that is not JSON; adds the security headers to every response.
pub(crate) async fn guard(state: axum::extract::State<State>, request: Request<Body>, next: Next) -> Response {
    let mut response = match check(&state, &request) {
        Ok(()) => next.run(request).await,
        Err((status, message)) => error(status, message),
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why a request is refused: its status and a message.
type Refusal = (StatusCode, &'static str);

fn check(state: &State, request: &Request<Body>) -> Result<(), Refusal> {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !state.hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(host)) {
        return Err((StatusCode::FORBIDDEN, "unknown Host header; open the address `regimen ui` printed"));
    }
    // The page and its scripts hold no data: a browser loads them before it can send the token.
    let public = request.method() == Method::GET && {
        let path = request.uri().path();
        path == "/" || path.starts_with("/assets/")
    };
    if let Some(token) = state.token.as_ref().filter(|_| !public) {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return Err((StatusCode::UNAUTHORIZED, "missing or wrong token (Authorization: Bearer TOKEN)"));
        }
    }
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            let own = state.hosts.iter().any(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
            if !own {
                return Err((StatusCode::FORBIDDEN, "cross-origin request refused"));
            }
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "request bodies must be application/json"));
        }
    }
    Ok(())
}

/// Compares without stopping at the first difference, so that timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
