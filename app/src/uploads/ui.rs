//! `/assets`: the creator's uploads. Drag files in or pick them; each shows a real progress
//! bar (the browser's upload progress events), then its state while previews are made, or the
//! reason it was refused. Uploading needs JavaScript; the list and deleting work without it.
//!
//! A lazy route ([`AssetsRoute`]): the page's code, the upload with XMLHttpRequest and its
//! progress events included, is a WASM chunk the browser fetches only for this page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{LazyRoute, lazy_route};

use super::{Asset, AssetList, AssetState, DeleteAsset, list_assets, size_label};
use crate::accounts::ui::SignedInOnly;
use crate::resource::{PageResource, resource};

/// `/assets`, a lazy route. The list is made at the top of the page, outside the Suspense that
/// shows it (see `create::ui::CreatePage`).
pub struct AssetsRoute;

#[lazy_route]
impl LazyRoute for AssetsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        let list = resource(|| (), |_| list_assets());
        view! { <AssetsPage list /> }.into_any()
    }
}

/// The assets page.
#[component]
fn AssetsPage(list: PageResource<Result<AssetList, shared::error::AppError>>) -> impl IntoView {
    view! {
        <Title text="Assets" />
        <section class="assets-page">
            <h1>"Assets"</h1>
            <p class="lede">"Logos, photos and artwork for your brand kits. PNG, JPEG, WebP or SVG."</p>
            <SignedInOnly hint=" to upload.">
                <Assets list />
            </SignedInOnly>
        </section>
    }
}

/// One file being uploaded from this page.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// Local key.
    pub key: u32,
    /// The file's name.
    pub name: String,
    /// Percent sent.
    pub percent: u32,
    /// What is happening.
    pub status: String,
    /// Why it was refused.
    pub error: Option<String>,
    /// The asset, once stored.
    pub asset: Option<Asset>,
}

#[component]
fn Assets(list: PageResource<Result<AssetList, shared::error::AppError>>) -> impl IntoView {
    let pending = RwSignal::new(Vec::<Pending>::new());
    let delete = ServerAction::<DeleteAsset>::new();
    // Refresh the list after a delete.
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            list.refetch();
        }
    });
    let dragging = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    let start = move |files: leptos::web_sys::FileList| browser::start(files, pending, list);
    #[cfg(not(feature = "hydrate"))]
    let start = move |_files: ()| {
        let _ = (pending, list);
    };
    let _ = &start;

    view! {
        <label
            class="dropzone"
            class:dragging=move || dragging.get()
            data-testid="dropzone"
            on:dragover=move |ev| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev| {
                ev.prevent_default();
                dragging.set(false);
                #[cfg(feature = "hydrate")]
                if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
                    start(files);
                }
                #[cfg(not(feature = "hydrate"))]
                let _ = ev;
            }
        >
            <span class="dropzone-title">"Drop images here, or choose files"</span>
            <span class="muted">"Up to 10 MB each"</span>
            <input
                type="file"
                name="files"
                multiple
                accept="image/png,image/jpeg,image/webp,image/svg+xml,.png,.jpg,.jpeg,.webp,.svg"
                data-testid="file-input"
                on:change=move |ev| {
                    #[cfg(feature = "hydrate")]
                    {
                        use leptos::wasm_bindgen::JsCast;
                        if let Some(input) = ev
                            .target()
                            .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlInputElement>().ok())
                        {
                            if let Some(files) = input.files() {
                                start(files);
                            }
                            input.set_value("");
                        }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = ev;
                }
            />
            <noscript>"Uploading needs JavaScript (for the progress bar and the checks)."</noscript>
        </label>
        <ul class="uploads" data-testid="uploads">
            <For
                each=move || pending.get()
                key=|p| (p.key, p.percent, p.status.clone(), p.error.clone())
                children=|p| view! { <PendingRow p /> }
            />
        </ul>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(l) => view! { <AssetGrid l delete /> }.into_any(),
                    Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn PendingRow(p: Pending) -> impl IntoView {
    let failed = p.error.is_some();
    let thumb = p.asset.as_ref().and_then(|a| a.thumb_url.clone());
    view! {
        <li class="upload" class:failed=failed data-testid="upload">
            <span class="upload-name">{p.name.clone()}</span>
            <progress max="100" value=p.percent.to_string() aria-label=format!("{} sent", p.name)>
                {format!("{}%", p.percent)}
            </progress>
            <span class="upload-status" data-testid="upload-status">{p.status.clone()}</span>
            {p.error.map(|e| view! { <span class="field-error" role="alert" data-testid="upload-error">{e}</span> })}
            {thumb.map(|src| view! { <img class="upload-thumb" src=src alt="" width="64" height="64" /> })}
        </li>
    }
}

#[component]
fn AssetGrid(l: AssetList, delete: ServerAction<DeleteAsset>) -> impl IntoView {
    let usage = format!(
        "{} of {} used",
        size_label(l.used_bytes),
        size_label(l.limit_bytes)
    );
    let empty = l.assets.is_empty();
    view! {
        <p class="muted storage-usage" data-testid="storage-usage">{usage}</p>
        <Show when=move || empty>
            <p class="muted">"No uploads yet."</p>
        </Show>
        <ul class="asset-grid" data-testid="assets">
            {l
                .assets
                .into_iter()
                .map(|a| view! { <AssetCard a delete /> })
                .collect_view()}
        </ul>
    }
}

#[component]
fn AssetCard(a: Asset, delete: ServerAction<DeleteAsset>) -> impl IntoView {
    let detail = format!(
        "{} · {}×{} · {}",
        a.mime.label(),
        a.width,
        a.height,
        size_label(a.bytes)
    );
    let preview = match (a.state, a.thumb_url.clone()) {
        (AssetState::Ready, Some(src)) => view! {
            <img src=src alt=a.filename.clone() width="160" height="160" loading="lazy" />
        }
        .into_any(),
        (state, _) => view! { <span class="asset-state">{state.label()}</span> }.into_any(),
    };
    view! {
        <li class="asset-card" data-testid="asset">
            <div class="asset-preview">{preview}</div>
            <p class="asset-name">{a.filename.clone()}</p>
            <p class="muted">{detail}</p>
            <p class="asset-actions">
                <a href=a.original_url.clone() download>"Original"</a>
                <ActionForm action=delete>
                    <input type="hidden" name="id" value=a.id.to_string() />
                    <button type="submit" class="link-button">"Delete"</button>
                </ActionForm>
            </p>
        </li>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    //! The upload itself: ask for a URL, send the file with progress, follow its variants.

    use leptos::prelude::*;
    use leptos::wasm_bindgen::JsCast;
    use leptos::wasm_bindgen::closure::Closure;
    use leptos::web_sys::{File, FileList, ProgressEvent, XmlHttpRequest};

    use super::Pending;
    use crate::resource::PageResource;
    use crate::uploads::{AssetList, AssetState, UploadOutcome, get_asset, request_upload};
    use shared::error::AppError;

    fn update(pending: RwSignal<Vec<Pending>>, key: u32, f: impl FnOnce(&mut Pending)) {
        pending.update(|list| {
            if let Some(p) = list.iter_mut().find(|p| p.key == key) {
                f(p);
            }
        });
    }

    /// Starts uploading every file in `files`, one after another.
    pub fn start(
        files: FileList,
        pending: RwSignal<Vec<Pending>>,
        list: PageResource<Result<AssetList, AppError>>,
    ) {
        let mut batch = Vec::new();
        for i in 0..files.length() {
            if let Some(file) = files.get(i) {
                let key =
                    pending.with_untracked(|l| l.iter().map(|p| p.key + 1).max().unwrap_or(0)) + i;
                batch.push((key, file));
            }
        }
        pending.update(|l| {
            for (key, file) in &batch {
                l.insert(
                    0,
                    Pending {
                        key: *key,
                        name: file.name(),
                        percent: 0,
                        status: "Waiting…".into(),
                        error: None,
                        asset: None,
                    },
                );
            }
        });
        leptos::task::spawn_local(async move {
            for (key, file) in batch {
                one(file, key, pending).await;
            }
            list.refetch();
        });
    }

    async fn one(file: File, key: u32, pending: RwSignal<Vec<Pending>>) {
        let fail = |message: String| {
            update(pending, key, |p| {
                p.status = "Refused".into();
                p.error = Some(message);
            })
        };
        let mime = match file.type_().as_str() {
            "" => guess_type(&file.name()).to_owned(),
            t => t.to_owned(),
        };
        update(pending, key, |p| p.status = "Checking…".into());
        let ticket = match request_upload(file.name(), file.size() as u64, mime, None).await {
            Ok(t) => t,
            Err(e) => return fail(e.field_message("file").unwrap_or(&e.message).to_owned()),
        };
        update(pending, key, |p| p.status = "Uploading…".into());
        let sent = match send(&file, &ticket.url, pending, key).await {
            Ok(outcome) => outcome,
            Err(message) => return fail(message),
        };
        let mut asset = sent.asset;
        loop {
            let status = match asset.state {
                AssetState::Ready if sent.duplicate => "Ready (already stored)",
                AssetState::Ready => "Ready",
                AssetState::Failed => "Previews failed",
                AssetState::Processing => "Making previews…",
            };
            let done = asset.state != AssetState::Processing;
            let a = asset.clone();
            update(pending, key, |p| {
                p.percent = 100;
                p.status = status.into();
                p.asset = Some(a);
            });
            if done {
                return;
            }
            sleep(700).await;
            match get_asset(asset.id).await {
                Ok(a) => asset = a,
                Err(e) => return fail(e.message),
            }
        }
    }

    fn guess_type(name: &str) -> &'static str {
        let lower = name.to_ascii_lowercase();
        match lower.rsplit('.').next() {
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("webp") => "image/webp",
            Some("svg") => "image/svg+xml",
            _ => "application/octet-stream",
        }
    }

    async fn sleep(ms: i32) {
        let promise = leptos::web_sys::js_sys::Promise::new(&mut |resolve, _| {
            if let Some(w) = leptos::web_sys::window() {
                let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    /// PUTs the file with XMLHttpRequest (fetch has no upload progress) and reads the answer.
    async fn send(
        file: &File,
        url: &str,
        pending: RwSignal<Vec<Pending>>,
        key: u32,
    ) -> Result<UploadOutcome, String> {
        let offline =
            || "Could not reach SocialCraft. Check your connection and try again.".to_owned();
        let xhr = XmlHttpRequest::new().map_err(|_| offline())?;
        xhr.open("PUT", url).map_err(|_| offline())?;
        let _ = xhr.set_request_header("Accept", "application/json");
        let on_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |ev: ProgressEvent| {
            if ev.length_computable() && ev.total() > 0.0 {
                let percent = ((ev.loaded() / ev.total()) * 100.0) as u32;
                update(pending, key, |p| p.percent = percent.min(100));
            }
        });
        if let Ok(upload) = xhr.upload() {
            upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        }
        let (tx, rx) = futures_channel();
        let done = Closure::<dyn FnMut()>::new(tx);
        xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
        xhr.send_with_opt_blob(Some(file)).map_err(|_| offline())?;
        rx.await;
        drop(on_progress);
        drop(done);
        let status = xhr.status().unwrap_or(0);
        let body = xhr.response_text().ok().flatten().unwrap_or_default();
        if status == 0 {
            return Err(offline());
        }
        if (200..300).contains(&status) {
            return serde_json::from_str::<UploadOutcome>(&body)
                .map_err(|_| "The upload finished but its answer could not be read.".to_owned());
        }
        Err(match serde_json::from_str::<AppError>(&body) {
            Ok(e) => e.field_message("file").unwrap_or(&e.message).to_owned(),
            Err(_) => format!("The upload failed (HTTP {status})."),
        })
    }

    /// A one-shot signal from a callback to an async task, without another dependency.
    fn futures_channel() -> (
        impl FnMut() + 'static,
        impl std::future::Future<Output = ()>,
    ) {
        let (tx, rx) = futures_channel::oneshot::channel::<()>();
        let mut tx = Some(tx);
        (
            move || {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            },
            async move {
                let _ = rx.await;
            },
        )
    }
}
