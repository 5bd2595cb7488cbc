//! The create page: the submission form, and the recent generations with live progress.
//!
//! The page is in the main WASM module: it is the first page most visitors see. Two parts of
//! it run only after the creator does something, and are split points of their own (each a
//! small WASM chunk, `cargo leptos build --release --split`), so the first page hydrates
//! without them:
//! - sending the form (reading it, the shared validation rules, the server function call):
//!   fetched when the creator first focuses the form, so it is there by the time they submit;
//! - following a generation live (`EventSource`, the polling fallback): fetched when a card
//!   has something to follow.

use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use super::validation::{PROMPT_MAX_CHARS, Style, VARIATIONS_MAX, VARIATIONS_MIN};
use super::{Format, GenerationStatus, GenerationView, SubmitGeneration, recent_generations};
use crate::resource::{PageResource, resource};
use shared::error::{AppError, FieldError};

/// The home page: the studio for a signed-in creator, an invitation to sign up otherwise.
#[component]
pub fn CreatePage() -> impl IntoView {
    let account = crate::accounts::ui::use_account();
    // Every resource the studio reads is made here, outside the Suspense: a resource created
    // while a Suspense renders its children can leave a server-rendered response hanging
    // (leptos-rs/leptos#4866, #4851). Signed out, each answers 401 at once without touching
    // the database, and nothing reads it.
    let data = StudioData {
        recent: resource(|| (), |_| recent_generations()),
        trends: resource(|| (), |_| crate::trends::top_trends()),
        brands: resource(|| (), |_| crate::brands::list_brands()),
    };
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let signed_in = match account {
                    Some(crate::accounts::ui::AccountContext(r)) => r.await.ok().flatten().is_some(),
                    None => false,
                };
                if signed_in {
                    view! { <Studio data /> }.into_any()
                } else {
                    view! { <crate::accounts::ui::SignedOutCreate /> }.into_any()
                }
            })}
        </Suspense>
    }
}

/// Write a prompt, pick a style, a format and how many images; watch them being made; see
/// what was made recently.
/// What the studio loads with the page.
#[derive(Clone, Copy)]
struct StudioData {
    recent: PageResource<Result<Vec<GenerationView>, AppError>>,
    trends: PageResource<Result<Vec<crate::trends::Trend>, AppError>>,
    brands: PageResource<Result<Vec<crate::brands::Brand>, AppError>>,
}

#[component]
fn Studio(data: StudioData) -> impl IntoView {
    // The server's answer to the last submission, and whether one is on its way.
    let answer = RwSignal::new(None::<Result<GenerationView, AppError>>);
    let pending = RwSignal::new(false);
    // Errors found in the browser before anything is sent. They use the same rules as the
    // server, so a message here is exactly the one the server would have given.
    let local_errors = RwSignal::new(Vec::<FieldError>::new());
    let form_ref = NodeRef::<html::Form>::new();
    let prompt_ref = NodeRef::<html::Textarea>::new();
    // A trend link without JavaScript comes back as `/?prompt=…`: start with it filled in.
    let query = leptos_router::hooks::use_query_map();
    let initial_prompt: String = query
        .with_untracked(|q| q.get("prompt"))
        .unwrap_or_default()
        .chars()
        .take(PROMPT_MAX_CHARS)
        .collect();
    let chars = RwSignal::new(initial_prompt.trim().chars().count());
    // Generations submitted from this page, newest first; they are followed live.
    let submitted = RwSignal::new(Vec::<GenerationView>::new());

    let on_submit = move |ev: SubmitEvent| {
        // With JavaScript the form never navigates: validate here, then send with fetch.
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        #[cfg(feature = "hydrate")]
        if let Some(form) = form_ref.get_untracked() {
            pending.set(true);
            leptos::task::spawn_local(async move {
                if let Some(result) = submission::send(form, local_errors).await {
                    // A successful submission joins the live list and clears the field for
                    // the next idea.
                    if let Ok(view) = &result {
                        let view = view.clone();
                        submitted.update(|list| {
                            if !list.iter().any(|g| g.id == view.id) {
                                list.insert(0, view);
                            }
                        });
                        if let Some(el) = prompt_ref.get_untracked() {
                            el.set_value("");
                        }
                        chars.set(0);
                    }
                    answer.set(Some(result));
                }
                pending.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (form_ref, answer, submitted);
    };
    // Fetch the sending code as soon as the creator starts on the form.
    let on_focus = move |_: leptos::ev::FocusEvent| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(submission::__preload_send());
    };

    // Without JavaScript the form posts to the server function, which redirects back here
    // with its error in the query string; with it, the answer arrives from `send`.
    let posted = crate::accounts::ui::posted_error(SubmitGeneration::PATH);
    let server_error = move || {
        answer.with(|v| match v {
            Some(result) => result.clone().err(),
            None => posted.get(),
        })
    };
    let field_message = move |field: &'static str| {
        let local = local_errors.with(|errs| {
            errs.iter()
                .find(|e| e.field == field)
                .map(|e| e.message.clone())
        });
        local.or_else(|| server_error().and_then(|e| e.field_message(field).map(str::to_owned)))
    };
    let prompt_error = Signal::derive(move || field_message("prompt"));
    let style_error = Signal::derive(move || field_message("style"));
    let format_error = Signal::derive(move || field_message("format"));
    let variations_error = Signal::derive(move || field_message("variations"));
    // Errors that belong to no field (the server is down, a bad request).
    let form_error = move || server_error().filter(|e: &AppError| e.fields.is_empty());

    // Loaded once with the page: what was made recently. New submissions are added above it
    // by this page itself, so it does not reload on every submission.
    let recent = data.recent;

    view! {
        <section class="create">
            <h1>"Create"</h1>
            <p class="lede">"Describe the post you need, pick a style and where it goes."</p>
            <form
                class="prompt-form"
                method="post"
                action=SubmitGeneration::url()
                node_ref=form_ref
                on:submit=on_submit
                on:focusin=on_focus
                novalidate
            >
                <div class="field" class:invalid=move || prompt_error.get().is_some()>
                    <label for="prompt">"Prompt"</label>
                    <textarea
                        id="prompt"
                        name="prompt"
                        rows="3"
                        placeholder="A sunrise over Lisbon rooftops, announcing our summer sale"
                        node_ref=prompt_ref
                        aria-invalid=move || prompt_error.get().is_some().to_string()
                        aria-describedby="prompt-help prompt-error"
                        on:input=move |ev| chars.set(event_target_value(&ev).trim().chars().count())
                    >
                        {initial_prompt}
                    </textarea>
                    <div class="field-help" id="prompt-help">
                        <span>{move || format!("{} / {PROMPT_MAX_CHARS}", chars.get())}</span>
                    </div>
                    <p class="field-error" id="prompt-error" role="alert">
                        {move || prompt_error.get()}
                    </p>
                </div>
                <div class="field-row">
                    <SelectField
                        name="style"
                        label="Style"
                        error=style_error
                        options=Style::ALL.iter().map(|s| (s.slug().to_owned(), s.label().to_owned())).collect()
                        selected=Style::ALL[0].slug().to_owned()
                    />
                    <SelectField
                        name="format"
                        label="Format"
                        error=format_error
                        options=Format::ALL.iter().map(|f| (f.slug().to_owned(), f.label().to_owned())).collect()
                        selected=Format::ALL[0].slug().to_owned()
                    />
                    <SelectField
                        name="variations"
                        label="Images"
                        error=variations_error
                        options=(VARIATIONS_MIN..=VARIATIONS_MAX).rev().map(|n| (n.to_string(), n.to_string())).collect()
                        selected=VARIATIONS_MAX.to_string()
                    />
                </div>
                <crate::brands::ui::BrandSelect
                    kits=data.brands
                    error=Signal::derive(move || field_message("brand"))
                />
                <p class="form-error" role="alert">{move || form_error().map(|e| e.message)}</p>
                <button type="submit" disabled=move || pending.get()>
                    {move || if pending.get() { "Submitting…" } else { "Create" }}
                </button>
                // After the button, so the form's controls stay on a phone's first screen.
                <TrendChips trends=data.trends prompt_ref chars />
            </form>
        </section>
        <section class="recent" aria-labelledby="recent-title">
            <h2 id="recent-title">"Your generations"</h2>
            <div class="generations" data-testid="generations">
                <For
                    each=move || submitted.get()
                    key=|g| g.id
                    children=|g| view! { <GenerationCard initial=g /> }
                />
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match recent.await {
                            Ok(list) => {
                                view! {
                                    <RecentList
                                        list
                                        hide=Signal::derive(move || {
                                            submitted.with(|s| s.iter().map(|g| g.id).collect())
                                        })
                                    />
                                }
                                    .into_any()
                            }
                            Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </section>
    }
}

/// Percent-encodes `s` for a query string value.
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The top trends; choosing one fills the prompt with its topic and hashtag. Each is also a
/// link to `/?prompt=…`, which does the same without JavaScript.
#[component]
fn TrendChips(
    trends: PageResource<Result<Vec<crate::trends::Trend>, AppError>>,
    prompt_ref: NodeRef<html::Textarea>,
    chars: RwSignal<usize>,
) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let list = trends.await.unwrap_or_default();
                if list.is_empty() {
                    return ().into_any();
                }
                view! {
                    <div class="trends" data-testid="trends">
                        <p class="trends-title" id="trends-title">"Trending now"</p>
                        <ul class="trend-chips" aria-labelledby="trends-title">
                            {list
                                .into_iter()
                                .map(|t| {
                                    let text = format!("{} {}", t.topic, t.hashtag);
                                    let href = format!("/?prompt={}", query_value(&text));
                                    let sources = t.sources.join(", ");
                                    let on_click = move |ev: leptos::ev::MouseEvent| {
                                        if let Some(el) = prompt_ref.get() {
                                            ev.prevent_default();
                                            el.set_value(&text);
                                            chars.set(text.chars().count());
                                            let _ = el.focus();
                                        }
                                    };
                                    view! {
                                        <li>
                                            <a
                                                class="trend-chip"
                                                href=href
                                                title=format!("From {sources}")
                                                data-sources=sources.clone()
                                                on:click=on_click
                                            >
                                                <span class="trend-topic">{t.topic.clone()}</span>
                                                <span class="trend-tag">{t.hashtag.clone()}</span>
                                            </a>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    </div>
                }
                    .into_any()
            })}
        </Transition>
    }
}

/// A labelled `<select>` with its error message below it.
#[component]
fn SelectField(
    name: &'static str,
    label: &'static str,
    error: Signal<Option<String>>,
    /// (value, text) pairs.
    options: Vec<(String, String)>,
    selected: String,
) -> impl IntoView {
    let error_id = format!("{name}-error");
    view! {
        <div class="field" class:invalid=move || error.get().is_some()>
            <label for=name>{label}</label>
            <select
                id=name
                name=name
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=error_id.clone()
            >
                {options
                    .into_iter()
                    .map(|(value, text)| {
                        let is_selected = value == selected;
                        view! { <option value=value selected=is_selected>{text}</option> }
                    })
                    .collect_view()}
            </select>
            <p class="field-error" id=error_id role="alert">
                {move || error.get()}
            </p>
        </div>
    }
}

/// Generations loaded with the page, minus those this page submitted (listed above them).
#[component]
fn RecentList(list: Vec<GenerationView>, hide: Signal<Vec<uuid::Uuid>>) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <p class="muted empty-hint" class:hidden=move || !hide.with(Vec::is_empty)>
                "Nothing yet. Your images will appear here."
            </p>
        }
        .into_any();
    }
    list.into_iter()
        .map(|g| {
            let id = g.id;
            view! {
                <Show when=move || !hide.with(|h| h.contains(&id))>
                    <GenerationCard initial=g.clone() />
                </Show>
            }
        })
        .collect_view()
        .into_any()
}

/// What the status line says.
fn status_text(g: &GenerationView) -> String {
    let done = g.images.len();
    match g.status {
        GenerationStatus::Queued if g.error.is_some() => "Retrying shortly…".to_owned(),
        GenerationStatus::Queued => "Queued".to_owned(),
        GenerationStatus::Running => format!(
            "Rendering {} of {} · {}%",
            (done + 1).min(usize::from(g.variations)),
            g.variations,
            g.progress
        ),
        GenerationStatus::Succeeded => {
            format!("Done · {} image{}", done, if done == 1 { "" } else { "s" })
        }
        GenerationStatus::Failed => format!(
            "Failed: {}",
            g.error
                .as_deref()
                .unwrap_or("the images could not be made.")
        ),
    }
}

/// One generation: its prompt, a progress bar while it runs, and its images as they arrive.
/// In the browser it follows the live event stream, and polls if the stream breaks.
#[component]
pub fn GenerationCard(initial: GenerationView) -> impl IntoView {
    let id = initial.id;
    let state = RwSignal::new(initial);

    #[cfg(feature = "hydrate")]
    {
        let follow_once = StoredValue::new(false);
        Effect::new(move |_| {
            if !follow_once.get_value() && !state.with_untracked(|g| g.status.is_final()) {
                follow_once.set_value(true);
                // Under this effect's owner, so the stream closes when the card goes.
                leptos::task::spawn_local_scoped_with_cancellation(live::follow(id, state));
            }
        });
    }

    let g = move || state.get();
    let landscape = state.with_untracked(|g| {
        let (w, h) = g.format.size();
        w > h
    });
    view! {
        <article
            class="generation"
            data-testid="generation"
            data-id=id.to_string()
            data-status=move || state.with(|g| g.status.as_str())
        >
            <header>
                <p class="generation-prompt">{move || g().prompt}</p>
                <p class="generation-meta">
                    <span class="chip">{move || g().style.label()}</span>
                    <span class="chip">{move || g().format.label()}</span>
                </p>
            </header>
            <div class="generation-status" role="status" aria-live="polite">
                <progress
                    max="100"
                    value=move || g().progress.to_string()
                    class:hidden=move || g().status.is_final()
                    aria-label="Progress"
                ></progress>
                <span
                    class="status-text"
                    class:failed=move || g().status == GenerationStatus::Failed
                >
                    {move || status_text(&g())}
                </span>
            </div>
            <ul class="images" class:landscape=landscape>
                {move || {
                    let g = g();
                    (0..g.variations)
                        .map(|i| {
                            match g.images.iter().find(|img| img.variation == i) {
                                Some(img) => {
                                    let img = img.clone();
                                    view! {
                                        <li>
                                            <a href=img.png_url.clone() target="_blank">
                                                <img
                                                    src=img.medium_url.clone()
                                                    srcset=img.srcset()
                                                    sizes="(max-width: 640px) 50vw, 240px"
                                                    width=img.width
                                                    height=img.height
                                                    alt=format!("Variation {} of “{}”", i + 1, g.prompt)
                                                    loading="lazy"
                                                    decoding="async"
                                                />
                                            </a>
                                        </li>
                                    }
                                        .into_any()
                                }
                                None => {
                                    view! {
                                        // The shape comes from a class, not a style
                                        // attribute: the CSP allows no inline styles.
                                        <li
                                            class=format!("placeholder ratio-{}", g.format.slug())
                                            class:failed=g.status == GenerationStatus::Failed
                                        ></li>
                                    }
                                        .into_any()
                                }
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </article>
    }
    // Erasing the card's type keeps the page's view type shallow enough for the compiler.
    .into_any()
}

#[cfg(feature = "hydrate")]
mod submission;

#[cfg(feature = "hydrate")]
mod live;
