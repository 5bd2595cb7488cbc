//! Brands: the types and rules the browser and the server share.
//!
//! The server functions that carry them are in `app::brands`; the records and services behind them are server-only.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most colours in a kit.
pub const MAX_COLORS: usize = 6;

/// Longest kit name.
pub const MAX_NAME_CHARS: usize = 60;

/// Most kits per creator.
pub const MAX_BRANDS: i64 = 50;

/// The fonts shipped with SocialCraft (system fonts are never used, so renders are the same
/// everywhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Font {
    /// Inter: a neutral sans-serif (the default).
    Inter,
    /// DejaVu Serif: an editorial serif.
    Serif,
    /// DejaVu Sans Mono: a technical monospace.
    Mono,
}

impl Font {
    /// Every font, in menu order.
    pub const ALL: [Font; 3] = [Font::Inter, Font::Serif, Font::Mono];

    /// The stored value.
    pub fn slug(self) -> &'static str {
        match self {
            Font::Inter => "inter",
            Font::Serif => "serif",
            Font::Mono => "mono",
        }
    }
    /// From the stored value.
    pub fn from_slug(s: &str) -> Option<Font> {
        Font::ALL.into_iter().find(|f| f.slug() == s)
    }
    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Font::Inter => "Inter (sans-serif)",
            Font::Serif => "DejaVu Serif",
            Font::Mono => "DejaVu Sans Mono",
        }
    }
    /// The family name the renderer draws with.
    pub fn family(self) -> &'static str {
        match self {
            Font::Inter => "Inter",
            Font::Serif => "DejaVu Serif",
            Font::Mono => "DejaVu Sans Mono",
        }
    }
}

/// A kit as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    /// Identifier.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// `#rrggbb`, in order of importance.
    pub colors: Vec<String>,
    /// Its font.
    pub font: Font,
    /// The logo asset, if any.
    pub logo_asset_id: Option<Uuid>,
    /// The logo's 320 px preview, once ready.
    pub logo_url: Option<String>,
}

/// What a generation records of the kit it was made with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandKit {
    /// The kit's name then.
    pub name: String,
    /// Its colours then.
    pub colors: Vec<String>,
    /// Its font.
    pub font: Font,
    /// The stored logo picture (a WebP variant), if the kit had a ready logo.
    pub logo_key: Option<String>,
}

/// A kit that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidBrand {
    /// Trimmed name.
    pub name: String,
    /// Normalised colours.
    pub colors: Vec<String>,
    /// Font.
    pub font: Font,
    /// Logo asset.
    pub logo: Option<Uuid>,
}

/// Parses colours written as `#RRGGBB` or `#RGB` (the `#` optional), separated by commas or
/// spaces; returns them as lowercase `#rrggbb`.
pub fn parse_colors(text: &str) -> Result<Vec<String>, FieldError> {
    let mut out = Vec::new();
    for raw in text
        .split([',', ' ', '\n', '\t', ';'])
        .filter(|s| !s.is_empty())
    {
        let hex = raw.trim().trim_start_matches('#');
        let ok = matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(FieldError::new(
                "colors",
                "invalid",
                format!("“{raw}” is not a colour like #1d3557 or #f80."),
            ));
        }
        let hex = hex.to_ascii_lowercase();
        let full = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect()
        } else {
            hex
        };
        out.push(format!("#{full}"));
    }
    if out.is_empty() {
        return Err(FieldError::new(
            "colors",
            "required",
            "Add at least one colour, like #1d3557.",
        ));
    }
    if out.len() > MAX_COLORS {
        return Err(FieldError::new(
            "colors",
            "too_many",
            format!("A kit has at most {MAX_COLORS} colours."),
        ));
    }
    Ok(out)
}

/// Checks a kit as the form sends it; every failing field at once.
pub fn validate_brand(
    name: &str,
    colors: &str,
    font: &str,
    logo: Option<&str>,
) -> Result<ValidBrand, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = name.trim();
    if name.is_empty() {
        errors.push(FieldError::new("name", "required", "Give the kit a name."));
    } else if name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "name",
            "too_long",
            format!("Keep the name to {MAX_NAME_CHARS} characters."),
        ));
    }
    let colors = parse_colors(colors).map_err(|e| errors.push(e)).ok();
    let font = Font::from_slug(font.trim());
    if font.is_none() {
        errors.push(FieldError::new(
            "font",
            "invalid",
            "Choose one of the fonts.",
        ));
    }
    let logo = match logo.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match Uuid::parse_str(s) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new(
                    "logo",
                    "invalid",
                    "Choose one of your uploads.",
                ));
                None
            }
        },
    };
    match (errors.is_empty(), colors, font) {
        (true, Some(colors), Some(font)) => Ok(ValidBrand {
            name: name.to_owned(),
            colors,
            font,
            logo,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex_normalised_and_at_most_six() {
        assert_eq!(
            parse_colors("#1D3557, e63946 #f80").unwrap(),
            vec!["#1d3557", "#e63946", "#ff8800"]
        );
        for (bad, code) in [
            ("", "required"),
            ("#12345", "invalid"),
            ("red", "invalid"),
            ("#1d3557zz", "invalid"),
            ("#111 #222 #333 #444 #555 #666 #777", "too_many"),
        ] {
            assert_eq!(parse_colors(bad).unwrap_err().code, code, "{bad}");
        }
    }

    #[test]
    fn a_kit_reports_every_bad_field() {
        let errors = validate_brand(" ", "nope", "comic", Some("x")).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "colors", "font", "logo"]);
        let ok = validate_brand(" Acme ", "#000", "serif", None).unwrap();
        assert_eq!(
            ok,
            ValidBrand {
                name: "Acme".into(),
                colors: vec!["#000000".into()],
                font: Font::Serif,
                logo: None
            }
        );
    }
}
