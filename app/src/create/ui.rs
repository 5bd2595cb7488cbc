//! The create page: the prompt form and the "Recent prompts" list.

use leptos::ev::SubmitEvent;
use leptos::form::FromFormData;
use leptos::html;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use super::validation::{PROMPT_MAX_CHARS, Style, validate_prompt};
use super::{PromptSummary, SubmitPrompt, recent_prompts};
use crate::error::{AppError, FieldError};

/// The home page: write a prompt, pick a style, submit; see what was submitted recently.
#[component]
pub fn CreatePage() -> impl IntoView {
    let submit = ServerAction::<SubmitPrompt>::new();
    // Errors found in the browser before anything is sent. They use the same rules as the
    // server, so a message here is exactly the one the server would have given.
    let local_errors = RwSignal::new(Vec::<FieldError>::new());
    let prompt_ref = NodeRef::<html::Textarea>::new();
    let chars = RwSignal::new(0usize);

    let on_submit = move |ev: SubmitEvent| {
        // With JavaScript the form never navigates: validate here, then send with fetch.
        ev.prevent_default();
        let input = match SubmitPrompt::from_event(&ev) {
            Ok(input) => input,
            Err(_) => {
                local_errors.set(vec![FieldError::new(
                    "prompt",
                    "unreadable",
                    "The form could not be read; reload the page and try again.",
                )]);
                return;
            }
        };
        match validate_prompt(&input.prompt, &input.style) {
            Ok(_) => {
                local_errors.set(Vec::new());
                submit.dispatch(input);
            }
            Err(errors) => local_errors.set(errors),
        }
    };

    // A successful submission clears the field for the next idea.
    Effect::new(move |_| {
        if let Some(Ok(_)) = submit.value().get() {
            if let Some(el) = prompt_ref.get() {
                el.set_value("");
            }
            chars.set(0);
        }
    });

    let server_error = move || {
        submit
            .value()
            .with(|v| v.as_ref().and_then(|r| r.clone().err()))
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
    // Errors that belong to no field (the server is down, a bad request).
    let form_error = move || server_error().filter(|e: &AppError| e.fields.is_empty());

    let recent = Resource::new(move || submit.version().get(), |_| recent_prompts());

    view! {
        <section class="create">
            <h1>"Create"</h1>
            <p class="lede">"Describe the post you need and pick a style."</p>
            <form
                class="prompt-form"
                method="post"
                action=SubmitPrompt::url()
                on:submit=on_submit
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
                    ></textarea>
                    <div class="field-help" id="prompt-help">
                        <span>{move || format!("{} / {PROMPT_MAX_CHARS}", chars.get())}</span>
                    </div>
                    <p class="field-error" id="prompt-error" role="alert">
                        {move || prompt_error.get()}
                    </p>
                </div>
                <div class="field" class:invalid=move || style_error.get().is_some()>
                    <label for="style">"Style"</label>
                    <select
                        id="style"
                        name="style"
                        aria-invalid=move || style_error.get().is_some().to_string()
                        aria-describedby="style-error"
                    >
                        {Style::ALL
                            .into_iter()
                            .map(|s| view! { <option value=s.slug()>{s.label()}</option> })
                            .collect_view()}
                    </select>
                    <p class="field-error" id="style-error" role="alert">
                        {move || style_error.get()}
                    </p>
                </div>
                <p class="form-error" role="alert">{move || form_error().map(|e| e.message)}</p>
                <button type="submit" disabled=move || submit.pending().get()>
                    {move || if submit.pending().get() { "Submitting…" } else { "Create" }}
                </button>
            </form>
        </section>
        <section class="recent" aria-labelledby="recent-title">
            <h2 id="recent-title">"Recent prompts"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match recent.await {
                        Ok(list) => view! { <RecentList list /> }.into_any(),
                        Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The list of recent prompts, or a hint when there are none yet.
#[component]
fn RecentList(list: Vec<PromptSummary>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted">"No prompts yet. Yours will be the first."</p> }
            .into_any();
    }
    view! {
        <ul class="recent-list" data-testid="recent-prompts">
            {list
                .into_iter()
                .map(|p| {
                    view! {
                        <li>
                            <span class="recent-prompt">{p.prompt}</span>
                            <span class="chip">{p.style.label()}</span>
                            <time datetime=p.created_at.to_rfc3339()>
                                {p.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}
                            </time>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}
