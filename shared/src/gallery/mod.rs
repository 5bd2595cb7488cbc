//! Gallery: the types and rules the browser and the server share.
//!
//! The server functions that carry them are in `app::gallery`; the records and services behind them are server-only.

use crate::create::{Format, Style};
use crate::error::FieldError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Images per gallery page.
pub const PAGE_SIZE: usize = 24;

/// Which gallery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The signed-in creator's images, shared or not.
    Mine,
    /// Images their owners shared, everyone's.
    Explore,
}

impl Scope {
    /// The gallery's address.
    pub fn path(self) -> &'static str {
        match self {
            Scope::Mine => "/gallery",
            Scope::Explore => "/explore",
        }
    }
}

/// The URLs of an image's stored files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// The PNG original.
    pub png: String,
    /// WebP, 320 px wide.
    pub small: String,
    /// WebP, 720 px wide.
    pub medium: String,
    /// WebP at full size.
    pub full: String,
}

/// One image in a gallery grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// The image.
    pub id: Uuid,
    /// Pixels, for the placeholder's aspect ratio.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Its prompt, the image's alternative text.
    pub prompt: String,
    /// Where its files are.
    pub src: Sources,
    /// Mean rating, when rated.
    pub rating: Option<f32>,
    /// How many ratings.
    pub ratings: u32,
    /// Shared on Explore.
    pub public: bool,
}

impl Card {
    /// A `srcset` over the WebP variants.
    pub fn srcset(&self) -> String {
        format!(
            "{} 320w, {} 720w, {} {}w",
            self.src.small, self.src.medium, self.src.full, self.width
        )
    }
}

/// One page of a gallery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Newest first.
    pub items: Vec<Card>,
    /// The cursor of the next page, `None` on the last.
    pub next: Option<String>,
}

/// The image page's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageDetail {
    /// The image as a gallery shows it.
    pub card: Card,
    /// Its style.
    pub style: Style,
    /// Its format.
    pub format: Format,
    /// Who made it, as shown publicly (never their email).
    pub creator: String,
    /// The viewer made it: they may share and delete it.
    pub mine: bool,
    /// The viewer's own rating.
    pub my_rating: Option<u8>,
    /// Size of the PNG in bytes.
    pub png_bytes: u64,
    /// When it was made.
    #[cfg_attr(
        feature = "hydrate",
        serde(deserialize_with = "crate::timestamp::deserialize")
    )]
    pub created_at: DateTime<Utc>,
}

/// An image's ratings after a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatingView {
    /// Mean rating, when rated.
    pub rating: Option<f32>,
    /// How many ratings.
    pub ratings: u32,
    /// The viewer's own rating.
    pub mine: Option<u8>,
}

/// The public name of a creator: stable, and derived from their id so no personal data shows.
pub fn creator_name(user_id: Option<Uuid>) -> String {
    match user_id {
        Some(id) => format!("creator-{}", &id.simple().to_string()[..8]),
        None => "a former creator".to_owned(),
    }
}

/// Reads a rating form's `stars`: 1 to 5 rates, 0 (the "clear" button) removes the rating.
///
/// The browser's buttons only send these values; anything else is a 422 beside the stars.
pub fn parse_stars(raw: &str) -> Result<Option<u8>, FieldError> {
    match raw.trim().parse::<u8>() {
        Ok(0) => Ok(None),
        Ok(n @ 1..=5) => Ok(Some(n)),
        _ => Err(FieldError::new(
            "stars",
            "out_of_range",
            "A rating is 1 to 5 stars.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_are_one_to_five_or_zero_to_clear() {
        assert_eq!(parse_stars("0"), Ok(None));
        assert_eq!(parse_stars("1"), Ok(Some(1)));
        assert_eq!(parse_stars(" 5 "), Ok(Some(5)));
        for bad in ["6", "-1", "", "3.5", "five", "256"] {
            assert_eq!(
                parse_stars(bad).map_err(|e| e.field),
                Err("stars".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn creator_names_show_no_personal_data() {
        let id = Uuid::parse_str("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").unwrap();
        assert_eq!(creator_name(Some(id)), "creator-0f1e2d3c");
        assert_eq!(creator_name(None), "a former creator");
    }
}
