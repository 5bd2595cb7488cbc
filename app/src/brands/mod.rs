//! Brand kits: a creator's brands, each with a name, one to six colours, a logo from their
//! uploads and a font from the shipped set. The create form offers them; the built-in
//! renderer paints with the kit's colours and font and places its logo inside the format's
//! safe area.
//!
//! A generation copies the kit it was made with (`BrandKit`, stored with the generation), so
//! editing or deleting the kit later changes neither a retry nor the record.

#[cfg(feature = "ssr")]
pub mod service;
pub mod ui;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, FieldError};

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

/// The signed-in user's kits, by name.
#[server(endpoint = "brands/list")]
pub async fn list_brands() -> Result<Vec<Brand>, AppError> {
    let user = crate::accounts::auth::require_user()?;
    let state = crate::state::AppState::from_context()?;
    service::list(&state, user.id).await
}

/// Creates a kit (no `id`) or updates one of the user's kits.
#[server(endpoint = "brands/save")]
pub async fn save_brand(
    id: Option<String>,
    name: String,
    colors: String,
    font: String,
    logo: Option<String>,
) -> Result<Brand, AppError> {
    let user = crate::accounts::auth::require_user()?;
    let valid =
        validate_brand(&name, &colors, &font, logo.as_deref()).map_err(AppError::validation)?;
    let id = match id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| AppError::not_found("No such kit."))?),
    };
    let state = crate::state::AppState::from_context()?;
    service::save(&state, user.id, id, valid).await
}

/// Deletes one of the user's kits (generations made with it keep their copy).
#[server(endpoint = "brands/delete")]
pub async fn delete_brand(id: Uuid) -> Result<(), AppError> {
    let user = crate::accounts::auth::require_user()?;
    let state = crate::state::AppState::from_context()?;
    service::delete(&state, user.id, id).await
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
