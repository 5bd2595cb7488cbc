//! The Content-Security-Policy, in one place. Only compiled with `ssr`.
//!
//! Scripts run only from our origin or with the per-response nonce Leptos puts on its
//! hydration scripts; WebAssembly needs `'wasm-unsafe-eval'`; styles come only from our
//! stylesheet (the UI sets no inline `style` attributes, it uses classes).
//!
//! The host's security middleware makes each page's nonce ([`PageNonce`], in the request's
//! extensions), writes it into the response's policy, and [`provide_page_nonce`] hands the
//! same value to Leptos for its scripts. One owner of the value, so the header and the
//! scripts cannot disagree.

use std::sync::Arc;

/// The nonce of the page being rendered for this request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageNonce(pub Arc<str>);

/// Makes Leptos put this request's [`PageNonce`] on its inline scripts (call it in the
/// context Leptos renders pages and server functions with).
pub fn provide_page_nonce() {
    if let Some(nonce) = leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<PageNonce>().cloned())
    {
        leptos::prelude::provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
}

/// The policy for a page carrying `nonce` (none: responses without inline scripts).
pub fn policy(nonce: Option<&str>) -> String {
    let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    policy_with(&nonce)
}

/// The policy for a page whose inline scripts are allowed by their SHA-256 hashes (base64)
/// instead of a nonce: a page served from a cache, identical for every visitor, where a
/// per-response nonce cannot be baked into the stored (and precompressed) bytes.
pub fn policy_with_hashes(hashes: &[String]) -> String {
    let sources: String = hashes.iter().map(|h| format!(" 'sha256-{h}'")).collect();
    policy_with(&sources)
}

fn policy_with(script_sources: &str) -> String {
    let nonce = script_sources;
    // `cargo leptos watch` reloads the page over a WebSocket on its reload port. Read once:
    // this runs for every response.
    static RELOAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let reload = RELOAD.get_or_init(|| match std::env::var("LEPTOS_WATCH") {
        Ok(_) => {
            let port = std::env::var("LEPTOS_RELOAD_PORT").unwrap_or_else(|_| "3001".into());
            format!(" ws://127.0.0.1:{port} ws://localhost:{port}")
        }
        Err(_) => String::new(),
    });
    format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data: blob:; font-src 'self'; connect-src 'self'{reload}; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_nonce_goes_into_script_src_and_nothing_unsafe_is_allowed() {
        let p = super::policy(Some("abc123"));
        assert!(
            p.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';"),
            "{p}"
        );
        assert!(
            !p.contains("unsafe-inline") && !p.contains("'unsafe-eval'"),
            "{p}"
        );
        assert!(p.contains("frame-ancestors 'none'") && p.contains("object-src 'none'"));
        assert!(!super::policy(None).contains("nonce"));
        let h = super::policy_with_hashes(&["YWJj".into(), "ZGVm".into()]);
        assert!(
            h.contains("script-src 'self' 'sha256-YWJj' 'sha256-ZGVm' 'wasm-unsafe-eval';"),
            "{h}"
        );
    }
}
