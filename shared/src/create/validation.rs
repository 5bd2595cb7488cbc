//! Submission rules, compiled into both the WASM bundle and the server so the browser's instant
//! feedback and the server's final say can never disagree.

use serde::{Deserialize, Serialize};

use super::formats::Format;
use crate::error::FieldError;

/// Fewest characters a prompt may have after trimming.
pub const PROMPT_MIN_CHARS: usize = 3;
/// Most characters a prompt may have after trimming.
pub const PROMPT_MAX_CHARS: usize = 500;

/// The curated visual styles a creator can pick. The list is fixed: anything else is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Big type, strong contrast.
    Bold,
    /// Quiet, lots of white space.
    Minimal,
    /// Saturated gradients.
    Vibrant,
    /// Soft, light colours.
    Pastel,
    /// Glowing lines on dark.
    Neon,
    /// Warm film tones and grain.
    Retro,
    /// Magazine layout and serif type.
    Editorial,
    /// Hand-drawn shapes.
    Playful,
}

impl Style {
    /// Every style, in the order the picker shows them.
    pub const ALL: [Style; 8] = [
        Style::Bold,
        Style::Minimal,
        Style::Vibrant,
        Style::Pastel,
        Style::Neon,
        Style::Retro,
        Style::Editorial,
        Style::Playful,
    ];

    /// The identifier stored in the database and sent by forms.
    pub fn slug(self) -> &'static str {
        match self {
            Style::Bold => "bold",
            Style::Minimal => "minimal",
            Style::Vibrant => "vibrant",
            Style::Pastel => "pastel",
            Style::Neon => "neon",
            Style::Retro => "retro",
            Style::Editorial => "editorial",
            Style::Playful => "playful",
        }
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Style::Bold => "Bold",
            Style::Minimal => "Minimal",
            Style::Vibrant => "Vibrant",
            Style::Pastel => "Pastel",
            Style::Neon => "Neon",
            Style::Retro => "Retro",
            Style::Editorial => "Editorial",
            Style::Playful => "Playful",
        }
    }

    /// The style with this slug, if it is one of ours.
    pub fn from_slug(slug: &str) -> Option<Style> {
        Style::ALL.into_iter().find(|s| s.slug() == slug)
    }
}

/// The fewest images one submission may ask for.
pub const VARIATIONS_MIN: u8 = 1;
/// The most images one submission may ask for, and the default.
pub const VARIATIONS_MAX: u8 = 4;

/// A submission that passed every rule: trimmed, within bounds, clean, with a known style and
/// format and a sane number of variations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    /// The trimmed prompt text.
    pub prompt: String,
    /// The chosen style.
    pub style: Style,
    /// The chosen platform format.
    pub format: Format,
    /// How many images to make (1 to 4).
    pub variations: u8,
}

/// Checks a submission as the create form sends it: every value a string, as in a form.
///
/// `variations` may be empty (the default, four). Returns every failing field at once so the
/// form can mark all of them in one round trip. The browser runs exactly this before sending,
/// and the server runs it again on what arrives.
pub fn validate_submission(
    prompt: &str,
    style: &str,
    format: &str,
    variations: &str,
) -> Result<Submission, Vec<FieldError>> {
    let mut errors = Vec::new();
    let trimmed = prompt.trim();
    let chars = trimmed.chars().count();

    if trimmed.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "prompt",
            "control_chars",
            "The prompt contains invisible control characters; please retype it.",
        ));
    } else if chars < PROMPT_MIN_CHARS {
        errors.push(FieldError::new(
            "prompt",
            "too_short",
            format!("Describe your image in at least {PROMPT_MIN_CHARS} characters."),
        ));
    } else if chars > PROMPT_MAX_CHARS {
        errors.push(FieldError::new(
            "prompt",
            "too_long",
            format!("Keep the prompt to {PROMPT_MAX_CHARS} characters or fewer (it has {chars})."),
        ));
    }

    let style = Style::from_slug(style);
    if style.is_none() {
        errors.push(FieldError::new(
            "style",
            "unknown_style",
            "Pick one of the listed styles.",
        ));
    }

    let format = Format::from_slug(format);
    if format.is_none() {
        errors.push(FieldError::new(
            "format",
            "unknown_format",
            "Pick one of the listed formats.",
        ));
    }

    let variations = match variations.trim() {
        "" => Some(VARIATIONS_MAX),
        v => v
            .parse::<u8>()
            .ok()
            .filter(|n| (VARIATIONS_MIN..=VARIATIONS_MAX).contains(n)),
    };
    if variations.is_none() {
        errors.push(FieldError::new(
            "variations",
            "out_of_range",
            format!("Choose between {VARIATIONS_MIN} and {VARIATIONS_MAX} images."),
        ));
    }

    match (errors.is_empty(), style, format, variations) {
        (true, Some(style), Some(format), Some(variations)) => Ok(Submission {
            prompt: trimmed.to_owned(),
            style,
            format,
            variations,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_prompt(prompt: &str, style: &str) -> Result<Submission, Vec<FieldError>> {
        validate_submission(prompt, style, "instagram_square", "")
    }

    fn codes(r: Result<Submission, Vec<FieldError>>) -> Vec<(String, String)> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    #[test]
    fn accepts_and_trims_a_good_prompt() {
        let v = validate_prompt("  Sunrise over Lisbon rooftops \n", "vibrant").expect("valid");
        assert_eq!(v.prompt, "Sunrise over Lisbon rooftops");
        assert_eq!(v.style, Style::Vibrant);
        assert_eq!(v.format, Format::InstagramSquare);
        assert_eq!(
            v.variations, VARIATIONS_MAX,
            "four images unless asked otherwise"
        );
    }

    #[test]
    fn format_and_variations_are_checked() {
        let ok = validate_submission("A fine prompt", "bold", "youtube_thumbnail", " 2 ").unwrap();
        assert_eq!((ok.format, ok.variations), (Format::YoutubeThumbnail, 2));
        for bad in ["0", "5", "-1", "two", "1.5", "256"] {
            assert_eq!(
                codes(validate_submission("A fine prompt", "bold", "x_post", bad)),
                [("variations".into(), "out_of_range".into())],
                "{bad}"
            );
        }
        assert_eq!(
            codes(validate_submission("A fine prompt", "bold", "myspace", "1")),
            [("format".into(), "unknown_format".into())]
        );
    }

    #[test]
    fn length_bounds_count_characters_not_bytes() {
        assert!(validate_prompt("abc", "bold").is_ok());
        assert_eq!(
            codes(validate_prompt("ab", "bold")),
            [("prompt".into(), "too_short".into())]
        );
        // Three multi-byte characters are three characters.
        assert!(validate_prompt("日本語", "bold").is_ok());
        let max = "é".repeat(PROMPT_MAX_CHARS);
        assert!(validate_prompt(&max, "bold").is_ok());
        let over = "é".repeat(PROMPT_MAX_CHARS + 1);
        assert_eq!(
            codes(validate_prompt(&over, "bold")),
            [("prompt".into(), "too_long".into())]
        );
    }

    #[test]
    fn whitespace_only_is_too_short() {
        assert_eq!(
            codes(validate_prompt("   \n\t ", "bold")),
            [("prompt".into(), "too_short".into())]
        );
    }

    #[test]
    fn rejects_control_characters_inside_the_prompt() {
        for bad in [
            "hello\u{0}world",
            "bell\u{7} ring",
            "esc \u{1b}[31m red",
            "a\nb c",
        ] {
            assert_eq!(
                codes(validate_prompt(bad, "bold")),
                [("prompt".into(), "control_chars".into())],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn style_must_be_from_the_list() {
        assert_eq!(
            codes(validate_prompt("A fine prompt", "comic-sans")),
            [("style".into(), "unknown_style".into())]
        );
        assert_eq!(
            codes(validate_prompt("A fine prompt", "")),
            [("style".into(), "unknown_style".into())]
        );
    }

    #[test]
    fn reports_every_failing_field() {
        let fields: Vec<_> = codes(validate_prompt("x", "nope"))
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, ["prompt", "style"]);
    }

    #[test]
    fn slugs_round_trip_and_there_are_eight_styles() {
        assert_eq!(Style::ALL.len(), 8);
        for s in Style::ALL {
            assert_eq!(Style::from_slug(s.slug()), Some(s));
        }
    }
}
