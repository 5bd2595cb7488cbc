//! Platform formats: the exact pixel sizes each network wants and the safe area that stays
//! clear of the platform's own overlays (profile bars, captions, buttons).

use serde::{Deserialize, Serialize};

/// Where a post is going, which fixes its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Instagram feed, square: 1080x1080.
    InstagramSquare,
    /// Instagram feed, portrait: 1080x1350.
    InstagramPortrait,
    /// Instagram Story and Reel, TikTok: 1080x1920.
    Story,
    /// X (Twitter) post image: 1600x900.
    XPost,
    /// LinkedIn shared image: 1200x627.
    Linkedin,
    /// YouTube thumbnail: 1280x720.
    YoutubeThumbnail,
}

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Format {
    /// Every format, in the order the picker shows them.
    pub const ALL: [Format; 6] = [
        Format::InstagramSquare,
        Format::InstagramPortrait,
        Format::Story,
        Format::XPost,
        Format::Linkedin,
        Format::YoutubeThumbnail,
    ];

    /// The identifier stored and sent by forms.
    pub fn slug(self) -> &'static str {
        match self {
            Format::InstagramSquare => "instagram_square",
            Format::InstagramPortrait => "instagram_portrait",
            Format::Story => "story",
            Format::XPost => "x_post",
            Format::Linkedin => "linkedin",
            Format::YoutubeThumbnail => "youtube_thumbnail",
        }
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Format::InstagramSquare => "Instagram square (1080×1080)",
            Format::InstagramPortrait => "Instagram portrait (1080×1350)",
            Format::Story => "Story / Reel / TikTok (1080×1920)",
            Format::XPost => "X post (1600×900)",
            Format::Linkedin => "LinkedIn (1200×627)",
            Format::YoutubeThumbnail => "YouTube thumbnail (1280×720)",
        }
    }

    /// The format with this slug, if it is one of ours.
    pub fn from_slug(slug: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.slug() == slug)
    }

    /// Width and height in pixels.
    pub fn size(self) -> (u32, u32) {
        match self {
            Format::InstagramSquare => (1080, 1080),
            Format::InstagramPortrait => (1080, 1350),
            Format::Story => (1080, 1920),
            Format::XPost => (1600, 900),
            Format::Linkedin => (1200, 627),
            Format::YoutubeThumbnail => (1280, 720),
        }
    }

    /// The area that no platform overlay covers. Stories lose about 250 px at the top
    /// (profile bar) and 340 px at the bottom (reply box); YouTube puts the duration badge
    /// bottom right; the rest keep a margin of about 7 %.
    pub fn safe_area(self) -> Rect {
        let (w, h) = self.size();
        let (w, h) = (w as f32, h as f32);
        let (left, top, right, bottom) = match self {
            Format::Story => (90.0, 250.0, 90.0, 340.0),
            Format::YoutubeThumbnail => (w * 0.07, h * 0.08, w * 0.16, h * 0.16),
            _ => (w * 0.07, h * 0.07, w * 0.07, h * 0.07),
        };
        Rect {
            x: left,
            y: top,
            w: w - left - right,
            h: h - top - bottom,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_platforms_and_safe_areas_fit_inside() {
        assert_eq!(Format::InstagramPortrait.size(), (1080, 1350));
        assert_eq!(Format::Story.size(), (1080, 1920));
        assert_eq!(Format::Linkedin.size(), (1200, 627));
        for f in Format::ALL {
            let (w, h) = f.size();
            let s = f.safe_area();
            assert!(s.x > 0.0 && s.y > 0.0 && s.w > 0.0 && s.h > 0.0, "{f:?}");
            assert!(s.x + s.w < w as f32 && s.y + s.h < h as f32, "{f:?}");
            assert_eq!(Format::from_slug(f.slug()), Some(f));
        }
    }
}
