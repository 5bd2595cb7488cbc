//! Forms posted without JavaScript: their outcome travels back by code, never as text.
//!
//! A server function answering a plain form post redirects back to the form's page, and
//! Leptos puts the whole error in that address (`__err`: the error's JSON, sentences
//! included; `__path`: the function). A page that shows text from its address can be made to
//! say anything by a link, so here:
//! - a server function's redirect has `__err` and `__path` replaced by the codes of
//!   [`app::posted`] (`form`, `error`, `fields`, `wait`), from which the page picks its own
//!   sentences; any outcome already in the address (an earlier attempt) is dropped first;
//! - a page requested with `__err` or `__path` is redirected to the same address without them,
//!   so Leptos never decodes an error from an address (its form actions would show the text).

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use app::posted::{LEPTOS_PARAMS, PARAMS, Posted};
use shared::error::AppError;

/// The middleware (see the module's documentation).
pub async fn outcomes(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if (method == Method::GET || method == Method::HEAD)
        && let Some(query) = req.uri().query()
        && pairs(query).any(|(k, _)| LEPTOS_PARAMS.contains(&k))
    {
        let kept = without(query, LEPTOS_PARAMS);
        let path = req.uri().path();
        let to = if kept.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{kept}")
        };
        return match HeaderValue::from_str(&to) {
            Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
            Err(_) => StatusCode::BAD_REQUEST.into_response(),
        };
    }
    let server_fn = method == Method::POST && req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    if !server_fn || !res.status().is_redirection() {
        return res;
    }
    let Some(location) = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return res;
    };
    let rewritten = rewrite(location);
    if rewritten != location
        && let Ok(v) = HeaderValue::from_str(&rewritten)
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// `location` with Leptos's error parameters and any earlier outcome removed, and this
/// outcome's codes added when it carried an error.
pub fn rewrite(location: &str) -> String {
    let (base, fragment) = match location.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (location, None),
    };
    let (path, query) = base.split_once('?').unwrap_or((base, ""));
    let error = pairs(query).find(|(k, _)| *k == "__err").map(|(_, v)| v);
    let form = pairs(query).find(|(k, _)| *k == "__path").map(|(_, v)| v);
    let mut kept = without(query, &[LEPTOS_PARAMS, PARAMS].concat());
    if let (Some(error), Some(form)) = (error, form) {
        let form = percent_decode(form);
        let error = decode_error(error);
        for (k, v) in Posted::from_error(&form, &error).pairs() {
            if !kept.is_empty() {
                kept.push('&');
            }
            kept.push_str(k);
            kept.push('=');
            kept.push_str(&percent_encode(&v));
        }
    }
    let mut out = path.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The error Leptos encoded (URL-safe base64 of its JSON), or an internal error when it
/// cannot be read: the page then shows the generic sentence.
fn decode_error(raw: &str) -> AppError {
    let b64 = percent_decode(raw);
    base64::engine::general_purpose::URL_SAFE
        .decode(b64.as_bytes())
        .ok()
        .and_then(|json| serde_json::from_slice::<AppError>(&json).ok())
        .unwrap_or_else(AppError::internal)
}

fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// The query without the parameters named in `drop`, otherwise as it was.
fn without(query: &str, drop: &[&str]) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| !drop.contains(&p.split_once('=').map_or(*p, |(k, _)| k)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes everything but unreserved characters and the `/`, `:` and `,` the codes use.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leptos_error_becomes_codes_and_old_outcomes_go() {
        let error = AppError::validation(vec![shared::error::FieldError::new(
            "password",
            "wrong_credentials",
            "That email and password do not match an account.",
        )]);
        let encoded = base64::engine::general_purpose::URL_SAFE
            .encode(serde_json::to_vec(&error).unwrap())
            .replace('=', "%3D");
        let location = format!(
            "http://localhost/signin?x=1&form=%2Fold&error=internal&__path=%2Fapi%2Fauth%2Fsign_in&__err={encoded}"
        );
        assert_eq!(
            rewrite(&location),
            "http://localhost/signin?x=1&form=/api/auth/sign_in&error=validation&fields=password:wrong_credentials"
        );
        // A success: the earlier outcome is dropped, nothing added.
        assert_eq!(
            rewrite("/account?password_changed=1&form=/api/x&error=validation"),
            "/account?password_changed=1"
        );
        assert_eq!(percent_decode("a%2Fb%3D+c%zz%4"), "a/b= c%zz%4");
    }
}
