//! The WASM entry point: hydrates the page the server rendered.
//!
//! This crate depends on `app` with the `hydrate` feature only, so no server code (database,
//! secrets, storage) can end up in the bundle the browser downloads.

// Leptos views are deeply nested types; hydrating the whole page needs more than the default.
#![recursion_limit = "256"]

/// Called by the bundle's loader script once the WASM module is instantiated.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
