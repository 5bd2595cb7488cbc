//! Uploads: the types and rules the browser and the server share.
//!
//! The server functions that carry them are in `app::uploads`; the records and services behind them are server-only.

use crate::error::{AppError, ErrorCode, FieldError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod xml;

/// The default largest upload, 10 MB (`UPLOAD_MAX_BYTES` changes it).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10_000_000;

/// Longest file name kept (longer ones are cut, keeping the extension).
pub const MAX_FILENAME_CHARS: usize = 255;

/// How long an upload URL stays valid.
pub const TICKET_TTL_SECS: i64 = 15 * 60;

/// The job kind that makes an upload's variants.
pub const VARIANTS_JOB: &str = "upload_variants";

/// The stable codes of upload rejections (the `code` of the `file` field error).
pub mod codes {
    /// Larger than the upload cap (413).
    pub const TOO_LARGE: &str = "too_large";
    /// Zero bytes (422).
    pub const EMPTY: &str = "empty_file";
    /// Not PNG, JPEG, WebP or SVG, as declared or as the bytes say (415).
    pub const UNSUPPORTED_TYPE: &str = "unsupported_type";
    /// The bytes are another allowed type than the one declared (415).
    pub const TYPE_MISMATCH: &str = "type_mismatch";
    /// The body was longer or shorter than the declared size (422).
    pub const SIZE_MISMATCH: &str = "size_mismatch";
    /// The body's SHA-256 is not the declared one (422).
    pub const SHA256_MISMATCH: &str = "sha256_mismatch";
    /// More pixels or a longer side than the decode limits allow (422).
    pub const IMAGE_TOO_LARGE: &str = "image_too_large";
    /// The image does not decode: truncated, corrupt, or not an image after its header (422).
    pub const DECODE_FAILED: &str = "decode_failed";
    /// Bytes after the image's end (a polyglot, such as a JPEG with a ZIP appended) (422).
    pub const TRAILING_DATA: &str = "trailing_data";
    /// An SVG with scripts, event handlers, `foreignObject`, external references or
    /// `javascript:` URLs (422).
    pub const SVG_UNSAFE: &str = "svg_unsafe";
    /// An SVG that does not parse or draws nothing (422).
    pub const SVG_INVALID: &str = "svg_invalid";
    /// An SVG with a DOCTYPE internal subset or an entity (or other markup) declaration:
    /// never expanded, refused (422).
    pub const SVG_DOCTYPE: &str = "svg_doctype";
    /// An SVG whose parse or drawing would pass the inspection's memory budget (too many
    /// elements or attributes, too deep, too many copies through `use` and references, or
    /// too many pixels in its layers) (422).
    pub const SVG_TOO_COMPLEX: &str = "svg_too_complex";
    /// The upload URL's token is malformed or its signature does not match (400).
    pub const TOKEN_INVALID: &str = "token_invalid";
    /// The upload URL is older than 15 minutes (403).
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// The upload URL was used already (403).
    pub const TOKEN_USED: &str = "token_used";
    /// The upload URL was issued to someone else (403).
    pub const TOKEN_WRONG_USER: &str = "token_wrong_user";
    /// Over the plan's storage (429).
    pub const QUOTA: &str = "quota_exceeded";
}

/// A rejection of the file: status from `code`, the stable reason on the `file` field.
pub fn reject(code: ErrorCode, reason: &'static str, message: impl Into<String>) -> AppError {
    let message = message.into();
    AppError {
        code,
        message: message.clone(),
        fields: vec![FieldError::new("file", reason, message)],
    }
}

/// The file types we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mime {
    /// `image/png`
    Png,
    /// `image/jpeg`
    Jpeg,
    /// `image/webp`
    Webp,
    /// `image/svg+xml`
    Svg,
}

impl Mime {
    /// Every accepted type.
    pub const ALL: [Mime; 4] = [Mime::Png, Mime::Jpeg, Mime::Webp, Mime::Svg];

    /// The MIME type.
    pub fn as_str(self) -> &'static str {
        match self {
            Mime::Png => "image/png",
            Mime::Jpeg => "image/jpeg",
            Mime::Webp => "image/webp",
            Mime::Svg => "image/svg+xml",
        }
    }

    /// The declared MIME type, or `None` for anything else (`image/jpg` is taken as JPEG, as
    /// some systems say it).
    pub fn parse(s: &str) -> Option<Mime> {
        match s.trim().to_ascii_lowercase().as_str() {
            "image/png" => Some(Mime::Png),
            "image/jpeg" | "image/jpg" => Some(Mime::Jpeg),
            "image/webp" => Some(Mime::Webp),
            "image/svg+xml" => Some(Mime::Svg),
            _ => None,
        }
    }

    /// The extension of stored originals.
    pub fn ext(self) -> &'static str {
        match self {
            Mime::Png => "png",
            Mime::Jpeg => "jpg",
            Mime::Webp => "webp",
            Mime::Svg => "svg",
        }
    }

    /// A short name for people.
    pub fn label(self) -> &'static str {
        match self {
            Mime::Png => "PNG",
            Mime::Jpeg => "JPEG",
            Mime::Webp => "WebP",
            Mime::Svg => "SVG",
        }
    }

    /// The type the bytes are, from their first bytes (magic numbers), never from a name or
    /// header the client chose. SVG, which is text, is recognised by an `svg` root element
    /// after an optional BOM, XML declaration, comments, PIs and doctype (see [`xml`]).
    pub fn sniff(head: &[u8]) -> Option<Mime> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(Mime::Png);
        }
        if head.starts_with(&[0xff, 0xd8, 0xff]) {
            return Some(Mime::Jpeg);
        }
        if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            return Some(Mime::Webp);
        }
        sniff_svg(head).then_some(Mime::Svg)
    }
}

/// Whether the root element of `head` (the first bytes of a file) is `svg` or `prefix:svg`,
/// found by [`xml::root_element`]: the same lexical reading of the prolog the server's
/// parser gets, so a `<svg` inside a comment, PI or DOCTYPE is not one. The parser then
/// requires that element to be in the SVG namespace.
fn sniff_svg(head: &[u8]) -> bool {
    xml::root_element(head)
        .is_some_and(|name| name == b"svg" || (name.len() > 4 && name.ends_with(b":svg")))
}

/// What the browser declares before uploading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    /// The file name, cleaned for display.
    pub filename: String,
    /// Bytes.
    pub size: u64,
    /// The declared type.
    pub mime: Mime,
    /// The SHA-256 the client computed, lowercase hex.
    pub sha256: Option<String>,
}

/// Checks a declaration against the cap; every problem is a `file` (or `sha256`) field error.
pub fn check_declared(
    filename: &str,
    size: u64,
    mime: &str,
    sha256: Option<&str>,
    max_bytes: u64,
) -> Result<Declared, AppError> {
    if size == 0 {
        return Err(reject(
            ErrorCode::Validation,
            codes::EMPTY,
            "This file is empty.",
        ));
    }
    if size > max_bytes {
        return Err(reject(
            ErrorCode::PayloadTooLarge,
            codes::TOO_LARGE,
            format!(
                "This file is {}; uploads may be at most {}.",
                size_label(size),
                size_label(max_bytes)
            ),
        ));
    }
    let Some(mime) = Mime::parse(mime) else {
        return Err(reject(
            ErrorCode::UnsupportedMediaType,
            codes::UNSUPPORTED_TYPE,
            "Upload a PNG, JPEG, WebP or SVG image.",
        ));
    };
    let sha256 = match sha256.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(AppError::validation(vec![FieldError::new(
                "sha256",
                "invalid",
                "The checksum must be 64 hexadecimal digits.",
            )]));
        }
    };
    Ok(Declared {
        filename: clean_filename(filename),
        size,
        mime,
        sha256,
    })
}

/// `10 MB`, `1.5 MB`, `12 KB`, `999 bytes` (decimal units, one decimal at most). Integer
/// arithmetic only: float formatting would add kilobytes to the WASM.
pub fn size_label(bytes: u64) -> String {
    for (unit, size) in [("GB", 1_000_000_000u64), ("MB", 1_000_000), ("KB", 1_000)] {
        if bytes >= size {
            let tenths = bytes * 10 / size;
            return if tenths.is_multiple_of(10) || tenths >= 100 {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} bytes")
}

/// A file name fit to show: the last path component, control characters removed, at most
/// [`MAX_FILENAME_CHARS`]; `upload` when nothing is left.
pub fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return "upload".to_owned();
    }
    cleaned.chars().take(MAX_FILENAME_CHARS).collect()
}

/// Where an asset is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssetState {
    /// Stored; the variants are being made.
    Processing,
    /// Variants made.
    Ready,
    /// The variants could not be made (the reason is on the asset).
    Failed,
}

impl AssetState {
    /// From the stored value.
    pub fn from_db(s: &str) -> AssetState {
        match s {
            "ready" => AssetState::Ready,
            "failed" => AssetState::Failed,
            _ => AssetState::Processing,
        }
    }
    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            AssetState::Processing => "Making previews…",
            AssetState::Ready => "Ready",
            AssetState::Failed => "Previews failed",
        }
    }
}

/// An uploaded file as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Identifier.
    pub id: Uuid,
    /// The name it was uploaded with.
    pub filename: String,
    /// The type its bytes are.
    pub mime: Mime,
    /// Size in bytes.
    pub bytes: u64,
    /// Width in pixels (for SVG, its intrinsic size).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Variant state.
    pub state: AssetState,
    /// Why the variants failed.
    pub error: Option<String>,
    /// The original, served as a download.
    pub original_url: String,
    /// The 320 px WebP, once ready.
    pub thumb_url: Option<String>,
    /// The 720 px WebP, once ready.
    pub preview_url: Option<String>,
    /// The full-size WebP, once ready.
    pub full_url: Option<String>,
    /// When it was uploaded.
    #[cfg_attr(
        feature = "hydrate",
        serde(deserialize_with = "crate::timestamp::deserialize")
    )]
    pub created_at: DateTime<Utc>,
}

/// What an upload returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOutcome {
    /// The asset (new, or the one the user already had with this content).
    pub asset: Asset,
    /// True when the content was already stored, so nothing new was written.
    pub duplicate: bool,
}

/// An upload URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Where to `PUT` the bytes.
    pub url: String,
    /// When the URL stops working.
    #[cfg_attr(
        feature = "hydrate",
        serde(deserialize_with = "crate::timestamp::deserialize")
    )]
    pub expires_at: DateTime<Utc>,
}

/// The assets page's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetList {
    /// Newest first.
    pub assets: Vec<Asset>,
    /// Bytes of uploads held.
    pub used_bytes: u64,
    /// The plan's storage.
    pub limit_bytes: u64,
    /// The upload cap per file.
    pub max_upload_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(Mime::sniff(b"\x89PNG\r\n\x1a\n...."), Some(Mime::Png));
        assert_eq!(
            Mime::sniff(&[0xff, 0xd8, 0xff, 0xe0, 0, 0]),
            Some(Mime::Jpeg)
        );
        assert_eq!(Mime::sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(Mime::Webp));
        assert_eq!(
            Mime::sniff(b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- x -->\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<svg xmlns=\"http://www.w3.org/2000/svg\">"),
            Some(Mime::Svg)
        );
        assert_eq!(
            Mime::sniff(b"<?x y?><svg:svg xmlns:svg=\"http://www.w3.org/2000/svg\">"),
            Some(Mime::Svg)
        );
        for other in [
            &b"<html><svg>"[..],
            b"GIF89a",
            b"PK\x03\x04",
            b"",
            b"<svgx>",
            b"RIFF\0\0\0\0WAVE",
            // `<svg` only inside a comment, a PI or a DOCTYPE's internal subset.
            b"<!-- <svg> --><html>",
            b"<?x <svg ?><html>",
            b"<!DOCTYPE html [<!ENTITY e \"<svg>\"> <!-- ]><svg> -->]><html>",
            b"<!DOCTYPE html [<!ENTITY a \"> <svg >\">]><html/>",
            // UTF-16 is not read as SVG (the parser takes UTF-8 only).
            b"\xff\xfe<\0s\0v\0g\0>\0",
        ] {
            assert_eq!(Mime::sniff(other), None, "{other:?}");
        }
    }

    #[test]
    fn declarations_are_checked_before_any_byte_moves() {
        let ok = check_declared("C:\\me\\logo.png", 10, "image/png", None, 100).unwrap();
        assert_eq!(ok.filename, "logo.png");
        let code = |r: Result<Declared, AppError>| r.unwrap_err().fields[0].code.clone();
        assert_eq!(
            code(check_declared("a", 0, "image/png", None, 100)),
            codes::EMPTY
        );
        assert_eq!(
            code(check_declared("a", 101, "image/png", None, 100)),
            codes::TOO_LARGE
        );
        assert_eq!(
            code(check_declared("a", 1, "image/gif", None, 100)),
            codes::UNSUPPORTED_TYPE
        );
        assert_eq!(
            code(check_declared("a", 1, "image/png", Some("xyz"), 100)),
            "invalid"
        );
        let h = "A".repeat(64);
        assert_eq!(
            check_declared("a", 1, "image/jpg", Some(&h), 100).unwrap(),
            Declared {
                filename: "a".into(),
                size: 1,
                mime: Mime::Jpeg,
                sha256: Some("a".repeat(64)),
            }
        );
        assert_eq!(clean_filename("../\u{0}\n"), "upload");
        assert_eq!(size_label(10_000_000), "10 MB");
        assert_eq!(size_label(1_560_000), "1.5 MB");
        assert_eq!(size_label(12_345), "12 KB");
        assert_eq!(size_label(999), "999 bytes");
    }
}
