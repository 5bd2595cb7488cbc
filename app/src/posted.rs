//! The outcome of a form posted without JavaScript, as its page reads it from the address.
//!
//! A server function answering a plain form post redirects back to the form's page. That
//! redirect carries codes only (the host rewrites Leptos's own `__err`, which held the whole
//! error with its sentences, into these): `form` (the server function's path), `error` (an
//! [`ErrorCode`]), `fields` (`name:code,name:code`) and `wait` (a whole number, for a limit
//! that says how long). The page turns them into its own sentences, so no text from an address
//! is ever shown: a link cannot make our pages say anything. An unknown code gets a generic
//! sentence.

use shared::error::{AppError, ErrorCode, FieldError};

/// The server function whose form was posted.
pub const FORM: &str = "form";
/// The error's [`ErrorCode`].
pub const ERROR: &str = "error";
/// The failing fields and their rules: `name:code`, comma-separated.
pub const FIELDS: &str = "fields";
/// How long to wait, in the unit the form's sentence uses (minutes for a sign-in lockout).
pub const WAIT: &str = "wait";
/// Every parameter of an outcome, which the host strips before writing a new one.
pub const PARAMS: &[&str] = &[FORM, ERROR, FIELDS, WAIT];
/// Leptos's own parameters for the same purpose, never honoured (they carry free text).
pub const LEPTOS_PARAMS: &[&str] = &["__err", "__path"];

/// Most fields an outcome names; a form has a handful.
const MAX_FIELDS: usize = 8;

/// What a plain form post came back with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// The server function's path (`/api/auth/sign_in`).
    pub form: String,
    /// The error's code; `None` for one this build does not know.
    pub code: Option<ErrorCode>,
    /// Failing fields and the code of the rule each failed.
    pub fields: Vec<(String, String)>,
    /// How long to wait, when the error said.
    pub wait: Option<u32>,
}

/// A name or code as the host writes them: lowercase letters, digits and `_`, short.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The code named `s` on the wire, if this build knows it.
pub fn parse_code(s: &str) -> Option<ErrorCode> {
    use ErrorCode::*;
    [
        Validation,
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        PayloadTooLarge,
        UnsupportedMediaType,
        HeadersTooLarge,
        RateLimited,
        QuotaExceeded,
        Unavailable,
        Network,
        Internal,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
}

impl Posted {
    /// Reads an outcome with `get` (a query parameter by name, decoded), or `None` when the
    /// address carries none.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let form = get(FORM)?;
        let code = get(ERROR).and_then(|c| parse_code(&c));
        let fields = get(FIELDS)
            .map(|list| {
                list.split(',')
                    .filter_map(|pair| pair.split_once(':'))
                    .filter(|(f, c)| is_token(f) && is_token(c))
                    .take(MAX_FIELDS)
                    .map(|(f, c)| (f.to_owned(), c.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let wait = get(WAIT).and_then(|w| w.parse::<u32>().ok());
        Some(Self {
            form,
            code,
            fields,
            wait,
        })
    }

    /// The outcome of `error`, answered by the server function at `form`. `wait` is the first
    /// number in the sentence of a limit (the only number such sentences hold).
    pub fn from_error(form: &str, error: &AppError) -> Self {
        let wait = matches!(
            error.code,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded
        )
        .then(|| {
            error
                .message
                .split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
                .and_then(|s| s.parse::<u32>().ok())
        })
        .flatten();
        Self {
            form: form.to_owned(),
            code: Some(error.code),
            fields: error
                .fields
                .iter()
                .filter(|f| is_token(&f.field) && is_token(&f.code))
                .take(MAX_FIELDS)
                .map(|f| (f.field.clone(), f.code.clone()))
                .collect(),
            wait,
        }
    }

    /// The query-string pairs of this outcome, unencoded (every value is a path or tokens).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(FORM, self.form.clone())];
        out.push((
            ERROR,
            self.code.unwrap_or(ErrorCode::Internal).as_str().to_owned(),
        ));
        if !self.fields.is_empty() {
            let list: Vec<String> = self
                .fields
                .iter()
                .map(|(f, c)| format!("{f}:{c}"))
                .collect();
            out.push((FIELDS, list.join(",")));
        }
        if let Some(w) = self.wait {
            out.push((WAIT, w.to_string()));
        }
        out
    }

    /// The error as the page shows it: our own sentence for each code.
    pub fn error(&self) -> AppError {
        let fields: Vec<FieldError> = self
            .fields
            .iter()
            .map(|(f, c)| FieldError::new(f, c, field_sentence(f, c)))
            .collect();
        let code = self.code.unwrap_or(ErrorCode::Internal);
        AppError {
            code,
            message: if fields.is_empty() {
                form_sentence(&self.form, self.code, self.wait)
            } else {
                "Some fields need attention.".to_owned()
            },
            fields,
        }
    }
}

/// The sentence for a field that failed rule `code`. The same words the server uses where its
/// sentence is fixed; where the server names what was typed or a rule's detail, a sentence
/// without it.
pub fn field_sentence(field: &str, code: &str) -> String {
    use crate::accounts::validation::{EMAIL_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
    use crate::create::validation::{
        PROMPT_MAX_CHARS, PROMPT_MIN_CHARS, VARIATIONS_MAX, VARIATIONS_MIN,
    };
    let fixed: &str = match (field, code) {
        ("email", "invalid_email") => "Enter an email address like name@example.com.",
        ("email", "too_long") => {
            return format!("An email address has at most {EMAIL_MAX_CHARS} characters.");
        }
        ("email", "taken") => "An account with this email already exists. Sign in instead.",
        ("password" | "new_password", "too_short") => {
            return format!("Use at least {PASSWORD_MIN_CHARS} characters.");
        }
        ("password" | "new_password", "too_long") => {
            return format!("Use at most {PASSWORD_MAX_CHARS} characters.");
        }
        ("password" | "new_password", "too_simple") => {
            "Use a password with more variety than a few repeated characters."
        }
        ("password" | "new_password", "is_email") => "Your password cannot be your email address.",
        ("password", "wrong_credentials") => "That email and password do not match an account.",
        ("current_password", "wrong_password") => "That is not your current password.",
        ("prompt", "control_chars") => {
            "The prompt contains invisible control characters; please retype it."
        }
        ("prompt", "too_short") => {
            return format!("Describe your image in at least {PROMPT_MIN_CHARS} characters.");
        }
        ("prompt", "too_long") => {
            return format!("Keep the prompt to {PROMPT_MAX_CHARS} characters or fewer.");
        }
        ("prompt", "blocked") => {
            "This prompt breaks one of our moderation rules. Please reword it."
        }
        ("style", "unknown_style") => "Pick one of the listed styles.",
        ("format", "unknown_format") => "Pick one of the listed formats.",
        ("variations", "out_of_range") => {
            return format!("Choose between {VARIATIONS_MIN} and {VARIATIONS_MAX} images.");
        }
        ("brand", _) => "Choose one of your brand kits.",
        ("stars", "out_of_range") => "A rating is 1 to 5 stars.",
        ("public", "invalid") => "Choose shared or private.",
        ("name", "required") => "Give the kit a name.",
        ("name", "too_long") => "Keep the name shorter.",
        ("name", "taken") => "You already have a kit with this name.",
        ("name", "too_many") => "You have as many kits as there can be. Delete one first.",
        ("colors", "invalid") => "Enter colours like #1d3557 or #f80.",
        ("colors", "required") => "Add at least one colour, like #1d3557.",
        ("colors", "too_many") => "A kit has fewer colours than that.",
        ("font", "invalid") => "Choose one of the fonts.",
        ("logo", _) => "Choose one of your uploads as the logo.",
        _ => "Check this field and try again.",
    };
    fixed.to_owned()
}

/// The sentence for an error that belongs to no field.
pub fn form_sentence(form: &str, code: Option<ErrorCode>, wait: Option<u32>) -> String {
    use crate::accounts::{ChangePassword, SignIn};
    use leptos::server_fn::ServerFn;
    let lockout = form == SignIn::PATH || form == ChangePassword::PATH;
    let fixed = match code {
        Some(ErrorCode::RateLimited) if lockout => {
            return match wait {
                Some(1) => {
                    "Too many failed sign-ins for this account. Try again in 1 minute.".to_owned()
                }
                Some(n) => {
                    format!("Too many failed sign-ins for this account. Try again in {n} minutes.")
                }
                None => "Too many failed sign-ins for this account. Try again later.".to_owned(),
            };
        }
        Some(ErrorCode::RateLimited) => "Too many requests. Please wait a moment and try again.",
        Some(ErrorCode::QuotaExceeded) => {
            "Your plan's allowance is used up for now. It frees up over the next 24 hours, or upgrade your plan."
        }
        Some(ErrorCode::Validation) => "Some fields need attention.",
        Some(ErrorCode::BadRequest) => {
            "The request could not be read. Reload the page and try again."
        }
        Some(ErrorCode::Unauthorized) => "Sign in to continue. Your session may have ended.",
        Some(ErrorCode::Forbidden) => "That is not allowed.",
        Some(ErrorCode::NotFound) => "That is not here any more. It may have been deleted.",
        Some(ErrorCode::PayloadTooLarge) => "That is larger than this form accepts.",
        Some(ErrorCode::UnsupportedMediaType) => "That kind of file is not accepted.",
        Some(ErrorCode::HeadersTooLarge) => {
            "The request's headers are too large. Clearing this site's cookies may help."
        }
        Some(ErrorCode::Unavailable) => {
            "SocialCraft is briefly unavailable. Please try again in a moment."
        }
        Some(ErrorCode::Network) => {
            "Could not reach SocialCraft. Check your connection and try again."
        }
        Some(ErrorCode::Internal) | None => "Something went wrong on our side. Please try again.",
    };
    fixed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn text_in_the_address_is_never_what_is_shown() {
        let evil = "Your account is suspended, call +1 555 0100";
        let posted = Posted::from_query(query(&[
            ("form", "/api/auth/sign_in"),
            ("error", evil),
            ("fields", &format!("password:{evil},email:x<script>")),
            ("wait", evil),
        ]))
        .unwrap();
        let shown = format!("{:?}", posted.error());
        assert!(
            !shown.contains("suspended") && !shown.contains("script"),
            "{shown}"
        );
        assert_eq!(
            posted.error().message,
            "Something went wrong on our side. Please try again."
        );
    }

    #[test]
    fn codes_round_trip_and_keep_their_sentences() {
        let e = AppError::new(
            ErrorCode::RateLimited,
            "Too many failed sign-ins for this account. Try again in 14 minutes.",
        );
        let posted = Posted::from_error("/api/auth/sign_in", &e);
        let pairs = posted.pairs();
        let back =
            Posted::from_query(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
                .unwrap();
        assert_eq!(back, posted);
        assert_eq!(back.error().message, e.message);
        for (field, code) in [
            ("password", "too_short"),
            ("password", "wrong_credentials"),
            ("email", "invalid_email"),
        ] {
            assert_ne!(field_sentence(field, code), field_sentence("x", "y"));
        }
        assert_eq!(parse_code("unavailable"), Some(ErrorCode::Unavailable));
        assert_eq!(parse_code("Unavailable"), None);
    }
}
