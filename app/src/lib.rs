//! SocialCraft's UI, routes, server-function declarations and the rules shared with the browser.
//!
//! Built twice: with `ssr` for the server (which renders pages and runs server functions) and
//! with `hydrate` for the WASM bundle. Everything that touches the database or secrets lives
//! behind `ssr` (`db`, `state`, each domain's `service`), so the WASM never links it.

#![recursion_limit = "256"]

pub mod accounts;
pub mod brands;
pub mod create;
#[cfg(feature = "ssr")]
pub mod csp;
pub mod error;
pub mod gallery;
pub mod trends;
pub mod uploads;

#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod media;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{SsrMode, path};

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
    // Effects run only in the browser, so this marks the moment the page became interactive.
    // End-to-end tests wait for it instead of guessing with timeouts.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    // Who is signed in, loaded once per page: the header, the create page and the account
    // page all read it.
    let account = Resource::new(|| (), |_| accounts::me());
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
                    <Route path=path!("") view=create::ui::CreatePage ssr=SsrMode::Async />
                    <Route path=path!("signin") view=accounts::ui::SignInPage ssr=SsrMode::Async />
                    <Route path=path!("signup") view=accounts::ui::SignUpPage ssr=SsrMode::Async />
                    <Route path=path!("account") view=accounts::ui::AccountPage ssr=SsrMode::Async />
                    <Route path=path!("gallery") view=gallery::ui::MyImagesPage ssr=SsrMode::Async />
                    <Route path=path!("explore") view=gallery::ui::ExplorePage ssr=SsrMode::Async />
                    <Route path=path!("images/:id") view=gallery::ui::ImagePage ssr=SsrMode::Async />
                    <Route path=path!("assets") view=uploads::ui::AssetsPage ssr=SsrMode::Async />
                    <Route path=path!("brands") view=brands::ui::BrandsPage ssr=SsrMode::Async />
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
