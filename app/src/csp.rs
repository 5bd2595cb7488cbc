//! The Content-Security-Policy, in one place. Only compiled with `ssr`.
//!
//! Scripts run only from our origin or with the per-response nonce Leptos puts on its
//! hydration scripts; WebAssembly needs `'wasm-unsafe-eval'`; styles come only from our
//! stylesheet (the UI sets no inline `style` attributes, it uses classes).

/// The policy for a page carrying `nonce` (none: responses without inline scripts).
pub fn policy(nonce: Option<&str>) -> String {
    let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    // `cargo leptos watch` reloads the page over a WebSocket on its reload port.
    let reload = match std::env::var("LEPTOS_WATCH") {
        Ok(_) => {
            let port = std::env::var("LEPTOS_RELOAD_PORT").unwrap_or_else(|_| "3001".into());
            format!(" ws://127.0.0.1:{port} ws://localhost:{port}")
        }
        Err(_) => String::new(),
    };
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
    }
}
