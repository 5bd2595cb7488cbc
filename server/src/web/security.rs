//! Response headers every answer carries, cross-site request checks, and CORS.
//!
//! - Every request that may render a page gets a fresh nonce here (`app::csp::PageNonce`,
//!   handed to Leptos for its inline scripts); HTML responses carry the policy with that
//!   nonce, every other response the same policy without one, media files a sandboxing one. HSTS is sent in production only (development runs on plain
//!   HTTP on loopback).
//! - A state-changing request (anything but GET, HEAD, OPTIONS) from a browser must come from
//!   our own origin or an allowed one: `Sec-Fetch-Site` decides when the browser sends it,
//!   else `Origin`. Requests with neither are not from a browser page, so they cannot carry a
//!   victim's cookies for someone else, and pass.
//! - CORS answers only the configured origins.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Security settings.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Origins (`https://app.example.com`) allowed to call us cross-site, for CORS and the
    /// cross-site request check.
    pub allowed_origins: Vec<String>,
    /// Send HSTS (production, behind TLS).
    pub hsts: bool,
}

/// The policy for media files: nothing inside may run or load anything.
pub const MEDIA_CSP: &str = "default-src 'none'; img-src 'self'; sandbox";

fn set_if_absent(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Adds the security headers to every response (after the handler ran, so 404s, errors and
/// panics get them too).
pub async fn headers(State(security): State<Security>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let media = path.starts_with("/media/");
    // Static files and media never render a page: no nonce to make.
    let nonce = (!media && !path.starts_with("/pkg/"))
        .then(new_nonce)
        .flatten();
    if let Some(n) = &nonce {
        req.extensions_mut()
            .insert(app::csp::PageNonce(n.as_str().into()));
    }
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = res.headers_mut();
    if media {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(MEDIA_CSP),
        );
    } else if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let nonce = nonce.as_deref().filter(|_| html);
        if let Ok(v) = HeaderValue::from_str(&app::csp::policy(nonce)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    set_if_absent(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_if_absent(
        h,
        header::REFERRER_POLICY,
        "strict-origin-when-cross-origin",
    );
    set_if_absent(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    );
    set_if_absent(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_if_absent(h, header::X_FRAME_OPTIONS, "DENY");
    if security.hsts {
        set_if_absent(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    res
}

/// 128 random bits, base64url: a nonce for one response.
fn new_nonce() -> Option<String> {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)),
        Err(e) => {
            // Without randomness the page's scripts will not run; the page still renders.
            tracing::error!(error = %e, "no randomness for a CSP nonce");
            None
        }
    }
}

/// The origin (`scheme://host[:port]`) the request was addressed to, as far as the `Host`
/// header says; the scheme is not compared (a TLS-terminating proxy changes it).
fn own_host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

fn origin_host(origin: &str) -> Option<&str> {
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
}

/// Whether a state-changing request may proceed.
pub fn same_site_or_allowed(security: &Security, method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let Some(origin) = origin
        && security.allowed_origins.iter().any(|o| o == origin)
    {
        return true;
    }
    if let Some(site) = headers
        .get(HeaderName::from_static("sec-fetch-site"))
        .and_then(|v| v.to_str().ok())
    {
        // `none`: the user typed the address or used a bookmark.
        return matches!(site, "same-origin" | "none");
    }
    match origin {
        // A page from some site posts to us: only ours may.
        Some(origin) => origin_host(origin).is_some() && origin_host(origin) == own_host(headers),
        None => true,
    }
}

/// Refuses cross-site state-changing requests with 403 and a stable code.
pub async fn cross_site_check(
    State(security): State<Security>,
    req: Request,
    next: Next,
) -> Response {
    if same_site_or_allowed(&security, req.method(), req.headers()) {
        return next.run(req).await;
    }
    tracing::warn!(
        method = %req.method(),
        origin = ?req.headers().get(header::ORIGIN),
        "cross-site request refused"
    );
    let body = shared::error::AppError::new(
        shared::error::ErrorCode::Forbidden,
        "This request came from another site and was refused.",
    );
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// CORS for the configured origins only (none: no cross-origin access at all).
pub fn cors(security: &Security) -> CorsLayer {
    let origins: Vec<HeaderValue> = security
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::ACCEPT])
        .allow_credentials(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn cross_site_posts_are_refused_and_same_site_ones_pass() {
        let s = Security {
            allowed_origins: vec!["https://partner.example".into()],
            hsts: false,
        };
        let post = Method::POST;
        assert!(same_site_or_allowed(
            &s,
            &Method::GET,
            &h(&[("origin", "https://evil.example")])
        ));
        assert!(same_site_or_allowed(
            &s,
            &post,
            &h(&[("sec-fetch-site", "same-origin")])
        ));
        assert!(!same_site_or_allowed(
            &s,
            &post,
            &h(&[("sec-fetch-site", "cross-site")])
        ));
        assert!(!same_site_or_allowed(
            &s,
            &post,
            &h(&[("sec-fetch-site", "same-site")])
        ));
        assert!(same_site_or_allowed(
            &s,
            &post,
            &h(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://partner.example")
            ])
        ));
        assert!(same_site_or_allowed(
            &s,
            &post,
            &h(&[
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ])
        ));
        assert!(!same_site_or_allowed(
            &s,
            &post,
            &h(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:3000")
            ])
        ));
        assert!(!same_site_or_allowed(
            &s,
            &post,
            &h(&[("origin", "null"), ("host", "a")])
        ));
        // No browser markers at all: not a page acting for a victim.
        assert!(same_site_or_allowed(&s, &post, &h(&[])));
    }
}
