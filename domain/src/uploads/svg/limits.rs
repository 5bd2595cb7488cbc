//! The limits an SVG is held to, the elements it may keep, and the refusals it can earn.

use crate::uploads::{codes, reject, xml};
use shared::error::{AppError, ErrorCode};

pub(super) const SVG_NS: &str = "http://www.w3.org/2000/svg";

pub(super) const XLINK_NS: &str = "http://www.w3.org/1999/xlink";

pub(super) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Most XML nodes (elements, text runs, comments, PIs) an upload may have.
pub(super) const MAX_NODES: u32 = 200_000;

/// Most elements an upload may have.
pub const MAX_ELEMENTS: u32 = 100_000;

/// Deepest nesting of elements, in the file and after `use` copies (usvg and resvg recurse
/// once per level on a 2 MiB thread stack).
pub const MAX_DEPTH: u32 = 100;

/// Most attributes on one element.
pub const MAX_ATTRIBUTES_PER_ELEMENT: u32 = 256;

/// Most attributes in a document.
pub const MAX_ATTRIBUTES: u32 = 400_000;

/// Most elements and text characters the drawing has once `use` and references are expanded.
pub const MAX_RENDERED: u64 = 150_000;

/// Most path and polygon coordinates the drawing has once expanded.
pub const MAX_PATH_NUMBERS: u64 = 8_000_000;

/// Most bytes of pixmaps rasterising may hold at once.
pub const MAX_RASTER_BYTES: u64 = 512 * 1024 * 1024;

pub(super) const LIMITS: xml::Limits = xml::Limits {
    elements: MAX_ELEMENTS,
    depth: MAX_DEPTH,
    attributes_per_element: MAX_ATTRIBUTES_PER_ELEMENT,
    attributes: MAX_ATTRIBUTES,
};

/// The longest side variants are drawn at; small drawings are drawn at least this big.
pub(super) const MAX_RASTER_SIDE: f32 = 2048.0;

pub(super) const MIN_RASTER_SIDE: f32 = 1024.0;

/// Elements kept: shapes, text, structure, paint servers, clipping, masking and filters.
pub(super) const ELEMENTS: &[&str] = &[
    "svg",
    "g",
    "a",
    "switch",
    "defs",
    "symbol",
    "use",
    "title",
    "desc",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "textPath",
    "linearGradient",
    "radialGradient",
    "stop",
    "clipPath",
    "mask",
    "pattern",
    "marker",
    "filter",
    "feBlend",
    "feColorMatrix",
    "feComponentTransfer",
    "feComposite",
    "feConvolveMatrix",
    "feDiffuseLighting",
    "feDisplacementMap",
    "feDistantLight",
    "feDropShadow",
    "feFlood",
    "feFuncA",
    "feFuncB",
    "feFuncG",
    "feFuncR",
    "feGaussianBlur",
    "feMerge",
    "feMergeNode",
    "feMorphology",
    "feOffset",
    "fePointLight",
    "feSpecularLighting",
    "feSpotLight",
    "feTile",
    "feTurbulence",
    "style",
];

/// Elements whose presence makes an upload unsafe (everything else unknown is just dropped).
pub(super) const ACTIVE_ELEMENTS: &[&str] = &[
    "script",
    "foreignObject",
    "iframe",
    "embed",
    "object",
    "audio",
    "video",
    "image",
    "animate",
    "set",
    "animateTransform",
    "animateMotion",
    "handler",
    "listener",
];

/// Why an SVG is refused before sanitising.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It does not parse, or its root is not `<svg>`.
    Invalid(String),
    /// It has a DOCTYPE internal subset or a markup declaration.
    Declarations,
    /// It is over the memory budget; says which part.
    TooComplex(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(d) => write!(f, "not a readable SVG: {d}"),
            Refusal::Declarations => f.write_str("a DOCTYPE or entity declaration"),
            Refusal::TooComplex(d) => write!(f, "too complex: {d}"),
        }
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> AppError {
        tracing::debug!(refusal = %r, "SVG upload refused");
        match r {
            Refusal::Invalid(_) => reject(
                ErrorCode::Validation,
                codes::SVG_INVALID,
                "This SVG could not be read as a drawing.",
            ),
            Refusal::Declarations => reject(
                ErrorCode::Validation,
                codes::SVG_DOCTYPE,
                "This SVG declares its own entities or document type (<!DOCTYPE … [ … ]> or <!ENTITY>), which uploads may not. Export it again without them (in Illustrator, without \"Preserve Illustrator Editing Capabilities\").",
            ),
            Refusal::TooComplex(what) => reject(
                ErrorCode::Validation,
                codes::SVG_TOO_COMPLEX,
                format!(
                    "This SVG is too complex to draw safely ({what}). Simplify it or export it as PNG."
                ),
            ),
        }
    }
}

pub(super) fn invalid(detail: impl std::fmt::Display) -> AppError {
    Refusal::Invalid(detail.to_string()).into()
}

pub(super) fn too_complex(what: &str) -> Refusal {
    Refusal::TooComplex(what.to_owned())
}
