//! `/brands`: the creator's brand kits: a list, and a form to add or edit one (name, colours,
//! font, logo from their uploads). Works without JavaScript (plain form posts).
//!
//! The page is a lazy route ([`BrandsRoute`]), its code a WASM chunk of its own; the create
//! form's kit picker ([`BrandSelect`]) is in the main module with the create page.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::{LazyRoute, lazy_route};

use super::{Brand, DeleteBrand, Font, SaveBrand, list_brands};
use crate::accounts::ui::SignedInOnly;
use crate::resource::{PageResource, resource};
use crate::uploads::{Asset, AssetState, list_assets};

/// `/brands`, a lazy route. The kits and the creator's uploads (for the logo) are made at the
/// top of the page, outside the Suspense that shows them (see `create::ui::CreatePage`).
pub struct BrandsRoute;

#[lazy_route]
impl LazyRoute for BrandsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        let kits = resource(|| (), |_| list_brands());
        let assets = resource(|| (), |_| list_assets());
        view! { <BrandsPage kits assets /> }.into_any()
    }
}

/// The brand kits page.
#[component]
fn BrandsPage(
    kits: PageResource<Result<Vec<Brand>, shared::error::AppError>>,
    assets: PageResource<Result<crate::uploads::AssetList, shared::error::AppError>>,
) -> impl IntoView {
    // The actions live with the page's code (in its chunk); the list reloads after each.
    let save = ServerAction::<SaveBrand>::new();
    let delete = ServerAction::<DeleteBrand>::new();
    Effect::watch(
        move || (save.version().get(), delete.version().get()),
        move |_, _, _| kits.refetch(),
        false,
    );
    view! {
        <Title text="Brand kits" />
        <section class="brands-page">
            <h1>"Brand kits"</h1>
            <p class="lede">"Your colours, font and logo, ready for every image you create."</p>
            <SignedInOnly hint=" to keep brand kits.">
                <Kits save delete kits assets />
            </SignedInOnly>
        </section>
    }
}

#[component]
fn Kits(
    save: ServerAction<SaveBrand>,
    delete: ServerAction<DeleteBrand>,
    kits: PageResource<Result<Vec<Brand>, shared::error::AppError>>,
    assets: PageResource<Result<crate::uploads::AssetList, shared::error::AppError>>,
) -> impl IntoView {
    let failed = crate::accounts::ui::action_error(save, <SaveBrand as ServerFn>::PATH);
    let error = move |field: &'static str| {
        failed.with(|e| {
            e.as_ref()
                .and_then(|e| e.field_message(field).map(str::to_owned))
        })
    };
    let saved = move || matches!(save.value().get(), Some(Ok(_)));
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match kits.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No kits yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="brand-list" data-testid="brands">
                            {list.into_iter().map(|b| view! { <KitCard b delete /> }).collect_view()}
                        </ul>
                    }
                        .into_any(),
                    Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
        <h2>"New kit"</h2>
        <ActionForm action=save attr:class="brand-form">
            <div class="field" class:invalid=move || error("name").is_some()>
                <label for="brand-name">"Name"</label>
                <input id="brand-name" name="name" maxlength="60" required />
                <p class="field-error" role="alert">{move || error("name")}</p>
            </div>
            <div class="field" class:invalid=move || error("colors").is_some()>
                <label for="brand-colors">"Colours"</label>
                <input id="brand-colors" name="colors" placeholder="#1d3557, #e63946, #f1faee" />
                <p class="field-help">"Up to six, most important first."</p>
                <p class="field-error" role="alert">{move || error("colors")}</p>
            </div>
            <div class="field" class:invalid=move || error("font").is_some()>
                <label for="brand-font">"Font"</label>
                <select id="brand-font" name="font">
                    {Font::ALL
                        .into_iter()
                        .map(|f| view! { <option value=f.slug()>{f.label()}</option> })
                        .collect_view()}
                </select>
                <p class="field-error" role="alert">{move || error("font")}</p>
            </div>
            <div class="field" class:invalid=move || error("logo").is_some()>
                <label for="brand-logo">"Logo"</label>
                <Transition fallback=|| view! { <select id="brand-logo" name="logo"><option value="">"No logo"</option></select> }>
                    {move || Suspend::new(async move {
                        let options: Vec<Asset> = assets
                            .await
                            .map(|l| l.assets)
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|a| a.state == AssetState::Ready)
                            .collect();
                        view! {
                            <select id="brand-logo" name="logo">
                                <option value="">"No logo"</option>
                                {options
                                    .into_iter()
                                    .map(|a| view! { <option value=a.id.to_string()>{a.filename}</option> })
                                    .collect_view()}
                            </select>
                        }
                    })}
                </Transition>
                <p class="field-help">
                    "From your " <A href="/assets">"assets"</A> "."
                </p>
                <p class="field-error" role="alert">{move || error("logo")}</p>
            </div>
            <p class="form-ok" role="status">{move || saved().then_some("Kit saved.")}</p>
            <button type="submit">"Save kit"</button>
        </ActionForm>
    }
}

#[component]
fn KitCard(b: Brand, delete: ServerAction<DeleteBrand>) -> impl IntoView {
    view! {
        <li class="brand-card" data-testid="brand">
            <div class="swatches">
                {b.colors
                    .iter()
                    .map(|c| {
                        let c = c.clone();
                        view! { <span class="swatch" style:background=c.clone() title=c></span> }
                    })
                    .collect_view()}
            </div>
            {b.logo_url.clone().map(|src| view! { <img class="brand-logo" src=src alt="Logo" width="48" height="48" /> })}
            <p class="brand-name">{b.name.clone()}</p>
            <p class="muted">{b.font.label()}</p>
            <ActionForm action=delete>
                <input type="hidden" name="id" value=b.id.to_string() />
                <button type="submit" class="link-button">"Delete"</button>
            </ActionForm>
        </li>
    }
}

/// The create form's kit picker: the creator's kits, or a link to make one.
#[component]
pub fn BrandSelect(
    /// The creator's kits, loaded by the page (outside any Suspense).
    kits: PageResource<Result<Vec<Brand>, shared::error::AppError>>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let list = kits.await.unwrap_or_default();
                if list.is_empty() {
                    return view! {
                        <p class="field-help brand-hint">
                            <A href="/brands">"Add a brand kit"</A>
                            " to use your colours, font and logo."
                        </p>
                    }
                        .into_any();
                }
                view! {
                    <div class="field" class:invalid=move || error.get().is_some()>
                        <label for="brand">"Brand kit"</label>
                        <select id="brand" name="brand" aria-describedby="brand-error">
                            <option value="">"None"</option>
                            {list
                                .into_iter()
                                .map(|b| view! { <option value=b.id.to_string()>{b.name}</option> })
                                .collect_view()}
                        </select>
                        <p class="field-error" id="brand-error" role="alert">{move || error.get()}</p>
                    </div>
                }
                    .into_any()
            })}
        </Transition>
    }
}
