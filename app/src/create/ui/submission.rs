//! Sending the create form, a split point of its own (see the module's documentation).

use leptos::form::FromFormData;
use leptos::prelude::*;
use leptos::web_sys::{FormData, HtmlFormElement};

use crate::create::{GenerationView, SubmitGeneration, submit_generation, validate_submission};
use shared::error::{AppError, FieldError};

/// Reads `form` and checks it with the rules the server uses, putting what they find in
/// `local_errors` (cleared when there is nothing); then sends it, and returns the
/// server's answer. `None`: refused in the browser, nothing was sent.
#[lazy]
pub async fn send(
    form: HtmlFormElement,
    local_errors: RwSignal<Vec<FieldError>>,
) -> Option<Result<GenerationView, AppError>> {
    let input = FormData::new_with_form(&form)
        .ok()
        .and_then(|data| SubmitGeneration::from_form_data(&data).ok());
    let Some(input) = input else {
        local_errors.set(vec![FieldError::new(
            "prompt",
            "unreadable",
            "The form could not be read; reload the page and try again.",
        )]);
        return None;
    };
    let variations = input.variations.as_deref().unwrap_or("");
    if let Err(errors) = validate_submission(&input.prompt, &input.style, &input.format, variations)
    {
        local_errors.set(errors);
        return None;
    }
    local_errors.set(Vec::new());
    let answer = submit_generation(
        input.prompt,
        input.style,
        input.format,
        input.variations,
        input.brand,
    )
    .await;
    Some(answer)
}
