//! The galleries ("My images", Explore) and the image page.
//!
//! A gallery's first page is rendered on the server. In the browser, an IntersectionObserver
//! watches the "Next page" link below the grid and, when it comes near the viewport, fetches
//! the next page and appends it. Without JavaScript the same link is an ordinary link to
//! `?after=CURSOR`, so every page is reachable either way.
//!
//! Each image reserves its box before it loads (`width` and `height` attributes give the
//! aspect ratio, the CSS a placeholder colour), picks its WebP variant from `srcset`/`sizes`,
//! and loads lazily unless it is in the first rows.
//!
//! All three pages are lazy routes ([`MyImagesRoute`], [`ExploreRoute`], [`ImageRoute`]): their
//! code, the IntersectionObserver included, is a WASM chunk the browser fetches only when it
//! shows one of them. Each makes its resource at the top of its lazy `view`, outside the
//! Suspense that reads it (why not in `data()`: see the routes in `App`).

use leptos::html;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::{LazyRoute, lazy_route};
use uuid::Uuid;

use super::{
    Card, DeleteImage, ImageDetail, Page, RateImage, Scope, ShareImage, gallery_page, get_image,
};
use crate::accounts::ui::{AccountContext, SignedInOnly, use_account};
use crate::resource::{PageResource, resource};
use shared::error::AppError;

/// Images loaded eagerly at the top of a first page (about two rows on a wide screen); the
/// rest wait until they are near the viewport.
const EAGER: usize = 8;

/// How the grid's columns relate to the viewport, for the browser's choice from `srcset`.
const SIZES: &str =
    "(max-width: 520px) 50vw, (max-width: 900px) 33vw, (max-width: 1400px) 25vw, 340px";

/// A gallery page's data: the page the address names (`?after=`), refetched when it changes.
type GalleryPage = PageResource<Result<Page, AppError>>;

fn page_resource(scope: Scope) -> GalleryPage {
    let query = use_query_map();
    resource(
        move || query.with(|q| q.get("after")),
        move |after| gallery_page(scope, after),
    )
}

/// `/gallery`, a lazy route: the signed-in creator's images. Signed out, the page answers 401
/// at once and nothing reads it.
pub struct MyImagesRoute;

#[lazy_route]
impl LazyRoute for MyImagesRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        let page = page_resource(Scope::Mine);
        view! { <MyImagesPage page /> }.into_any()
    }
}

/// `/explore`, a lazy route: images creators shared.
pub struct ExploreRoute;

#[lazy_route]
impl LazyRoute for ExploreRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        let page = page_resource(Scope::Explore);
        view! { <ExplorePage page /> }.into_any()
    }
}

/// `/images/:id`, a lazy route: the image, what made it, its ratings, downloads, and for its
/// creator sharing and deleting.
pub struct ImageRoute;

#[lazy_route]
impl LazyRoute for ImageRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        let params = use_params_map();
        let id = move || params.with(|p| p.get("id").and_then(|s| Uuid::parse_str(&s).ok()));
        let detail = resource(id, |id| async move {
            match id {
                Some(id) => get_image(id).await,
                None => Err(AppError::not_found("No such image.")),
            }
        });
        view! { <ImagePage detail /> }.into_any()
    }
}

/// The signed-in creator's images.
#[component]
fn MyImagesPage(page: GalleryPage) -> impl IntoView {
    let query = use_query_map();
    let deleted = move || query.with(|q| q.get_str("deleted").is_some());
    view! {
        <Title text="My images" />
        <section class="gallery-page">
            <h1>"My images"</h1>
            <p class="lede">"Everything you made. Share an image to put it on Explore."</p>
            <Show when=deleted>
                <p class="form-ok" role="status">"Image deleted."</p>
            </Show>
            <SignedInOnly hint=" to see your images.">
                <Gallery scope=Scope::Mine page />
            </SignedInOnly>
        </section>
    }
}

/// Images creators shared.
#[component]
fn ExplorePage(page: GalleryPage) -> impl IntoView {
    view! {
        <Title text="Explore" />
        <section class="gallery-page">
            <h1>"Explore"</h1>
            <p class="lede">"What creators shared, newest first."</p>
            <Gallery scope=Scope::Explore page />
        </section>
    }
}

/// A gallery from the page the address names, with more loading on scroll.
#[component]
fn Gallery(scope: Scope, page: GalleryPage) -> impl IntoView {
    let query = use_query_map();
    let after = move || query.with(|q| q.get("after"));
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let first_page = after().is_none();
                match page.await {
                    Ok(page) => view! { <Grid scope page first_page /> }.into_any(),
                    Err(e) => view! {
                        <p class="form-error" role="alert">{e.message}</p>
                        <p><A href=scope.path()>"Back to the first page"</A></p>
                    }
                        .into_any(),
                }
            })}
        </Suspense>
    }
}

/// The grid of a first page plus those appended as the creator scrolls.
#[component]
fn Grid(scope: Scope, page: Page, first_page: bool) -> impl IntoView {
    if page.items.is_empty() {
        let text = match (scope, first_page) {
            (Scope::Mine, true) => "Nothing here yet. Images you create appear here.",
            (Scope::Explore, true) => "Nothing shared yet. Share one of your images to start.",
            (_, false) => "No more images.",
        };
        return view! { <p class="muted empty-hint" data-testid="gallery-empty">{text}</p> }
            .into_any();
    }
    let extra = RwSignal::new(Vec::<Card>::new());
    let next = RwSignal::new(page.next.clone());
    let loading = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let sentinel = NodeRef::<html::A>::new();

    #[cfg(feature = "hydrate")]
    scroll::watch(sentinel, move || {
        if loading.get_untracked() {
            return;
        }
        let Some(cursor) = next.get_untracked() else {
            return;
        };
        loading.set(true);
        leptos::task::spawn_local(async move {
            match gallery_page(scope, Some(cursor)).await {
                Ok(page) => {
                    extra.update(|v| v.extend(page.items));
                    next.set(page.next);
                    error.set(None);
                }
                Err(e) => error.set(Some(e.message)),
            }
            loading.set(false);
        });
    });

    let first: Vec<_> = page
        .items
        .into_iter()
        .enumerate()
        .map(|(i, card)| view! { <CardView card eager=first_page && i < EAGER /> })
        .collect();
    view! {
        <ul class="gallery-grid" data-testid="gallery" data-scope=format!("{scope:?}")>
            {first}
            <For
                each=move || extra.get()
                key=|c| c.id
                children=|card| view! { <CardView card eager=false /> }
            />
        </ul>
        <nav class="gallery-more" aria-label="More images">
            <p class="form-error" role="alert">{move || error.get()}</p>
            {move || match next.get() {
                Some(cursor) => view! {
                    <a
                        class="button-link next-page"
                        href=format!("{}?after={cursor}", scope.path())
                        node_ref=sentinel
                        aria-busy=move || loading.get().to_string()
                        data-testid="next-page"
                    >
                        {move || if loading.get() { "Loading…" } else { "Next page" }}
                    </a>
                }
                    .into_any(),
                None => view! { <p class="muted" data-testid="gallery-end">"That is everything."</p> }
                    .into_any(),
            }}
        </nav>
    }
    .into_any()
}

/// One image in a grid: a link to its page, with its rating.
#[component]
fn CardView(card: Card, eager: bool) -> impl IntoView {
    let srcset = card.srcset();
    let rating = match card.rating {
        Some(r) => format!("★ {} ({})", one_decimal(r), card.ratings),
        None => "Not rated".to_owned(),
    };
    view! {
        <li class="gallery-card" data-image-id=card.id.to_string()>
            <a href=format!("/images/{}", card.id)>
                <img
                    src=card.src.small.clone()
                    srcset=srcset
                    sizes=SIZES
                    width=card.width
                    height=card.height
                    alt=card.prompt.clone()
                    loading=if eager { "eager" } else { "lazy" }
                    decoding="async"
                />
            </a>
            <p class="card-meta">
                <span class="card-rating">{rating}</span>
                {card.public.then(|| view! { <span class="badge">"Shared"</span> })}
            </p>
        </li>
    }
}

/// The image page.
#[component]
fn ImagePage(detail: PageResource<Result<ImageDetail, AppError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) => view! { <ImageDetailView detail=d /> }.into_any(),
                    Err(e) => {
                        #[cfg(feature = "ssr")]
                        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                            res.set_status(
                                axum::http::StatusCode::from_u16(e.code.http_status())
                                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                            );
                        }
                        view! {
                            <Title text="Image not found" />
                            <section class="message-page">
                                <h1>"We could not show that image"</h1>
                                <p>{e.message}</p>
                                <p><A href="/explore">"Explore shared images"</A></p>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// `2026-11-22 14:05 UTC`. Written out by hand: chrono's formatter would add tens of
/// kilobytes to the WASM for one date.
fn made_at(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A mean rating with one decimal, without float formatting (which is large in WASM).
fn one_decimal(r: f32) -> String {
    let tenths = (r * 10.0).round().max(0.0) as u32;
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn human_bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{}.{} MB", n / 1_000_000, (n % 1_000_000) / 100_000)
    } else {
        format!("{} KB", n.div_ceil(1000))
    }
}

#[component]
fn ImageDetailView(detail: ImageDetail) -> impl IntoView {
    let ImageDetail {
        card,
        style,
        format,
        creator,
        mine,
        my_rating,
        png_bytes,
        created_at,
    } = detail;
    let id = card.id;
    let srcset = card.srcset();
    let title = card.prompt.chars().take(60).collect::<String>();
    let downloads = [
        (
            "PNG original",
            card.src.png.clone(),
            format!(
                "{}×{} · {}",
                card.width,
                card.height,
                human_bytes(png_bytes)
            ),
            "png",
        ),
        (
            "WebP, full size",
            card.src.full.clone(),
            format!("{} px wide", card.width),
            "webp",
        ),
        (
            "WebP, 720 px",
            card.src.medium.clone(),
            "720 px wide".to_owned(),
            "webp",
        ),
        (
            "WebP, 320 px",
            card.src.small.clone(),
            "320 px wide".to_owned(),
            "webp",
        ),
    ];
    view! {
        <Title text=title />
        <article class="image-page" data-testid="image-page">
            <figure class="image-large">
                <img
                    src=card.src.medium.clone()
                    srcset=srcset
                    sizes="(max-width: 900px) 100vw, 60vw"
                    width=card.width
                    height=card.height
                    alt=card.prompt.clone()
                />
            </figure>
            <div class="image-info">
                <h1 class="image-prompt">{card.prompt.clone()}</h1>
                <dl class="image-facts">
                    <dt>"Style"</dt>
                    <dd>{style.label()}</dd>
                    <dt>"Format"</dt>
                    <dd>{format.label()}</dd>
                    <dt>"Creator"</dt>
                    <dd>{if mine { format!("{creator} (you)") } else { creator }}</dd>
                    <dt>"Made"</dt>
                    <dd>{made_at(created_at)}</dd>
                </dl>
                <Rating id initial_rating=card.rating initial_count=card.ratings mine=my_rating />
                <section class="downloads" aria-labelledby="downloads-title">
                    <h2 id="downloads-title">"Download"</h2>
                    <ul>
                        {downloads
                            .into_iter()
                            .map(|(label, href, note, ext)| {
                                view! {
                                    <li>
                                        <a href=href download=format!("socialcraft-{id}.{ext}")>{label}</a>
                                        <span class="muted">{note}</span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </section>
                {mine.then(|| view! { <OwnerActions id public=card.public /> })}
            </div>
        </article>
    }
}

/// The star buttons: each is a submit button of a real form, so rating works without
/// JavaScript; with it, the average updates in place.
#[component]
fn Rating(
    id: Uuid,
    initial_rating: Option<f32>,
    initial_count: u32,
    mine: Option<u8>,
) -> impl IntoView {
    let rate = ServerAction::<RateImage>::new();
    let signed_in = Signal::derive(move || {
        use_account()
            .is_some_and(|AccountContext(r)| r.get().and_then(|a| a.ok().flatten()).is_some())
    });
    let value = rate.value();
    let current = move || match value.get() {
        Some(Ok(v)) => (v.rating, v.ratings, v.mine),
        _ => (initial_rating, initial_count, mine),
    };
    let failed = crate::accounts::ui::action_error(rate, <RateImage as ServerFn>::PATH);
    let error = move || {
        failed.get().map(|e| {
            e.field_message("stars")
                .map(str::to_owned)
                .unwrap_or(e.message)
        })
    };
    let summary = move || {
        let (rating, count, _) = current();
        match rating {
            Some(r) => format!(
                "{} of 5 from {count} rating{}",
                one_decimal(r),
                if count == 1 { "" } else { "s" }
            ),
            None => "Not rated yet".to_owned(),
        }
    };
    view! {
        <section class="rating" aria-labelledby="rating-title">
            <h2 id="rating-title">"Rating"</h2>
            <p class="rating-summary" data-testid="rating-summary">{summary}</p>
            <Show
                when=move || signed_in.get()
                fallback=|| view! { <p class="muted"><A href="/signin">"Sign in"</A>" to rate it."</p> }
            >
                <ActionForm action=rate attr:class="stars-form">
                    <input type="hidden" name="id" value=id.to_string() />
                    <div class="stars" role="group" aria-label="Your rating">
                        {(1u8..=5)
                            .map(|n| {
                                let pressed = move || current().2.is_some_and(|m| m >= n);
                                view! {
                                    <button
                                        type="submit"
                                        name="stars"
                                        value=n.to_string()
                                        class="star"
                                        class:on=pressed
                                        aria-pressed=move || (current().2 == Some(n)).to_string()
                                        aria-label=format!("{n} star{}", if n == 1 { "" } else { "s" })
                                        disabled=move || rate.pending().get()
                                    >
                                        "★"
                                    </button>
                                }
                            })
                            .collect_view()}
                    </div>
                    <p class="muted" data-testid="my-rating">
                        {move || match current().2 {
                            Some(n) => format!("Your rating: {n} of 5"),
                            None => "You have not rated it.".to_owned(),
                        }}
                    </p>
                    <Show when=move || current().2.is_some()>
                        <button type="submit" name="stars" value="0" class="link-button">
                            "Clear my rating"
                        </button>
                    </Show>
                    <p class="field-error" id="stars-error" role="alert">{error}</p>
                </ActionForm>
            </Show>
        </section>
    }
}

/// Share or make private, and delete (behind a disclosure, so one click cannot delete).
#[component]
fn OwnerActions(id: Uuid, public: bool) -> impl IntoView {
    let share = ServerAction::<ShareImage>::new();
    let delete = ServerAction::<DeleteImage>::new();
    let shared = move || match share.value().get() {
        Some(Ok(p)) => p,
        _ => public,
    };
    let share_failed = crate::accounts::ui::action_error(share, <ShareImage as ServerFn>::PATH);
    let share_error = move || share_failed.get().map(|e| e.message);
    let delete_failed = crate::accounts::ui::action_error(delete, <DeleteImage as ServerFn>::PATH);
    let delete_error = move || delete_failed.get().map(|e| e.message);
    view! {
        <section class="owner-actions" aria-labelledby="owner-title">
            <h2 id="owner-title">"Sharing"</h2>
            <p data-testid="sharing-state">
                {move || if shared() { "Shared on Explore: anyone can see it." } else { "Private: only you can see it." }}
            </p>
            <ActionForm action=share>
                <input type="hidden" name="id" value=id.to_string() />
                <input type="hidden" name="public" value=move || (!shared()).to_string() />
                <button type="submit" disabled=move || share.pending().get()>
                    {move || if shared() { "Make private" } else { "Share on Explore" }}
                </button>
                <p class="form-error" role="alert">{share_error}</p>
            </ActionForm>
            <details class="danger-zone">
                <summary>"Delete…"</summary>
                <p>"This removes the image and its files for good."</p>
                <ActionForm action=delete>
                    <input type="hidden" name="id" value=id.to_string() />
                    <button type="submit" class="danger" disabled=move || delete.pending().get()>
                        "Delete this image"
                    </button>
                    <p class="form-error" role="alert">{delete_error}</p>
                </ActionForm>
            </details>
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod scroll {
    //! Calls `load` whenever the sentinel comes within a screen of the viewport.

    use leptos::html;
    use leptos::prelude::*;
    use leptos::wasm_bindgen::JsCast;
    use leptos::wasm_bindgen::closure::Closure;
    use leptos::web_sys::{
        IntersectionObserver, IntersectionObserverEntry, IntersectionObserverInit, js_sys,
    };

    /// Watches `sentinel` (which comes and goes as pages load) and calls `load` when it is
    /// near the viewport.
    pub fn watch(sentinel: NodeRef<html::A>, load: impl Fn() + Clone + 'static) {
        let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
            let near = entries.iter().any(|e| {
                e.dyn_into::<IntersectionObserverEntry>()
                    .is_ok_and(|e| e.is_intersecting())
            });
            if near {
                load();
            }
        });
        let init = IntersectionObserverInit::new();
        // Start loading a screen ahead, so scrolling rarely reaches the end of the grid.
        init.set_root_margin("0px 0px 100% 0px");
        let Ok(observer) =
            IntersectionObserver::new_with_options(callback.as_ref().unchecked_ref(), &init)
        else {
            // No observer (very old browser): the link still loads the next page.
            return;
        };
        callback.forget();
        let observer = StoredValue::new_local(observer);
        // The link is re-rendered while a page loads (its text changes) and after; observing
        // each new element afresh also fires a new callback, so a sentinel that is still in
        // view after a short page loads the next one.
        Effect::new(move |_| {
            observer.with_value(|o| o.disconnect());
            if let Some(el) = sentinel.get() {
                observer.with_value(|o| o.observe(&el));
            }
        });
        on_cleanup(move || {
            let _ = observer.try_with_value(|o| o.disconnect());
        });
    }
}
