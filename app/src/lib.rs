//! SocialCraft's UI: routes, components and the server-function declarations.
//!
//! Built twice: with `ssr` for the server (which renders pages and runs server functions) and
//! with `hydrate` for the WASM bundle. A server function's body calls the `domain` crate,
//! which only the `ssr` build depends on: the WASM cannot link the database, secrets or image
//! code because the crate graph leaves them out. The types both sides read are `shared`.

#![recursion_limit = "256"]

pub mod accounts;
pub mod brands;
pub mod create;
#[cfg(feature = "ssr")]
pub mod csp;
pub mod gallery;
pub mod posted;
pub mod resource;
pub mod trends;
pub mod uploads;

use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{Lazy, SsrMode, path};

/// The name of the built bundle: `/pkg/{OUTPUT_NAME}.js`, `.wasm` and `.css`.
pub const OUTPUT_NAME: &str = "socialcraft";

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The nonce on the hydration scripts is the host's (see `csp`), which its security
    // middleware also writes into this response's Content-Security-Policy.
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: header, routes and footer.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The browser marks `<body data-hydrated="true">` once the page is interactive (see the
    // `frontend` crate): with lazy routes that is only after the page's chunk has loaded, so an
    // effect here would say so too early.

    // Who is signed in, loaded once per page: the header, the create page and the account
    // page all read it.
    let account = resource::resource(|| (), |_| accounts::me());
    provide_context(accounts::ui::AccountContext(account));

    view! {
        <Stylesheet id="leptos" href=format!("/pkg/{OUTPUT_NAME}.css") />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Meta name="description" content="Turn prompts into finished social-media images." />
        <Title formatter=|title: String| {
            if title.is_empty() { "SocialCraft".to_owned() } else { format!("{title} · SocialCraft") }
        } />
        <Router>
            <header class="site-header">
                <A href="/" attr:class="brand">
                    "SocialCraft"
                </A>
                <nav class="site-nav" aria-label="Main">
                    <A href="/">"Create"</A>
                    <A href="/gallery">"My images"</A>
                    <A href="/explore">"Explore"</A>
                    <A href="/brands">"Brands"</A>
                    <A href="/assets">"Assets"</A>
                </nav>
                <accounts::ui::AccountMenu />
            </header>
            <main>
                <Routes fallback=|| view! { <NotFound /> }>
                    // Async SSR waits for the data, so the first response is the whole page:
                    // readable with JavaScript off and with no streaming scripts to allow.
                    // The create page is the first page most visitors see: it is in the main
                    // WASM module. Every other page is a lazy route, its code in a chunk of
                    // its own that the browser fetches when it lands on or navigates to it
                    // (built with `cargo leptos build --release --split`). A lazy route's
                    // `data()` runs in the main module, so these pages make their resources at
                    // the top of their lazy `view` instead (still outside any Suspense): the
                    // code that decodes the page's data then travels in the page's chunk. The
                    // cost is on client-side navigation to a page not visited yet: its data
                    // request starts once its chunk has arrived.
                    <Route path=path!("") view=create::ui::CreatePage ssr=SsrMode::Async />
                    <Route path=path!("signin") view={Lazy::<accounts::ui::SignInRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("signup") view={Lazy::<accounts::ui::SignUpRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("account") view={Lazy::<accounts::ui::AccountRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("gallery") view={Lazy::<gallery::ui::MyImagesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("explore") view={Lazy::<gallery::ui::ExploreRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("images/:id") view={Lazy::<gallery::ui::ImageRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("assets") view={Lazy::<uploads::ui::AssetsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("brands") view={Lazy::<brands::ui::BrandsRoute>::new()} ssr=SsrMode::Async />
                </Routes>
            </main>
            <footer class="site-footer">
                <p>"SocialCraft: from prompt to post."</p>
            </footer>
        </Router>
    }
}

/// Shown for any path no route matches, with a real 404 status.
#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found" />
        <section class="message-page">
            <h1>"We could not find that page"</h1>
            <p>"The link may be old, or the page may have moved."</p>
            <p>
                <A href="/">"Back to Create"</A>
            </p>
        </section>
    }
}
