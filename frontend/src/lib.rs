//! The WASM entry point: hydrates the page the server rendered.
//!
//! This crate depends on `app` with the `hydrate` feature only, so no server code (database,
//! secrets, storage) can end up in the bundle the browser downloads.

// Leptos views are deeply nested types; hydrating the whole page needs more than the default.
#![recursion_limit = "256"]

/// Called by the bundle's loader script once the WASM module is instantiated.
///
/// Hydrates asynchronously: most pages are lazy routes whose code is a separate WASM chunk
/// (`cargo leptos build --release --split`), fetched before the page can be hydrated. Once the
/// whole page is hydrated, `<body>` gets `data-hydrated="true"`: the moment the page became
/// interactive, which the end-to-end tests wait for instead of guessing with timeouts.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = leptos::prelude::document().body() else {
            return;
        };
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
