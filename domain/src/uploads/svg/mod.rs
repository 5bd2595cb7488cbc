//! SVG uploads: parsed, sanitised by allowlist and rasterised for their variants.
//!
//! SVG is a document format that can carry scripts, event handlers, HTML (`foreignObject`)
//! and references to other resources. [`sanitize`] rebuilds the document from the parse tree
//! keeping only SVG drawing elements and presentation attributes, and reports every active or
//! external construct it dropped. An upload with any such construct is refused (`svg_unsafe`,
//! naming what was found) rather than silently changed; the rebuilt document is what the
//! variants are drawn from and what is stored and served as the original (never the raw
//! upload), so even constructs we did not think of (unknown elements and attributes, editor
//! metadata, comments, PIs) never reach a rasteriser or a browser.
//!
//! Decisions, and why:
//!
//! - **No DTD is ever read.** The parser runs with DTDs off, so no entity (internal, external,
//!   parameter) can be defined, let alone expanded; `&name;` for anything but XML's five is a
//!   parse error. A DOCTYPE with an internal subset, or any markup declaration (`<!ENTITY`,
//!   `<!ELEMENT`, `<!ATTLIST`, `<!NOTATION`, a lower-case `<!doctype`) outside a comment or
//!   CDATA section, is refused with `svg_doctype`: no drawing needs one, and a design tool
//!   writes one only to declare namespace entities (Illustrator's "preserve editing"), which
//!   an export without that option does not. A bare `<!DOCTYPE svg PUBLIC "…" "…">`, as
//!   Illustrator writes by default, declares nothing; it is blanked before parsing (and so
//!   absent from the rebuilt document) rather than refused, so those files still upload.
//! - **Sniffer and parser read one grammar.** `crate::uploads::xml` is the lexical pass both
//!   use: the sniffer takes the root element it finds, the parser then requires that element
//!   to be `<svg>` in the SVG namespace, so nothing in a comment, PI or DOCTYPE counts.
//! - **Memory is bounded before it is spent**, in three stages, each a `svg_too_complex`
//!   refusal (422) when over:
//!   1. The lexical pass, before the parser allocates: at most [`MAX_ELEMENTS`] elements,
//!      [`MAX_DEPTH`] deep, [`MAX_ATTRIBUTES`] attributes, [`MAX_ATTRIBUTES_PER_ELEMENT`] on
//!      one element (the parser's duplicate check is quadratic per element). With DTDs off
//!      the parser borrows text and values from the input, so its tree is the input (at most
//!      `UPLOAD_MAX_BYTES`) plus about 64 bytes a node and 48 an attribute: under 50 MB.
//!   2. On the parsed tree, before usvg: the drawing as usvg will expand it. `use` and any
//!      `href` copy their target; a `url(#…)` reference may copy its target (patterns, masks
//!      and clip paths in bounding-box units are instantiated per element) once for every
//!      element that inherits it, and a marker once per vertex; `<style>` references count
//!      once per element of the document. At most [`MAX_RENDERED`] elements and text
//!      characters, and [`MAX_PATH_NUMBERS`] path coordinates, after expansion, and the
//!      expanded nesting at most [`MAX_DEPTH`] (usvg and resvg recurse per level). At well
//!      under 1 KiB per usvg node and 8 bytes per coordinate that is below 200 MB. Billion
//!      laughs through `use` (ten uses of ten uses of …) stops here.
//!   3. On usvg's tree, before resvg allocates pixels: the pixmaps resvg holds at once on the
//!      worst path through the tree: the canvas (at most 2048 x 2048), one layer per
//!      isolated group (opacity, mask, clip, filter, blend), sized by its bounding box and
//!      capped at 25 canvases as resvg caps it, one more per mask or clip and one per filter
//!      primitive result, and each pattern tile at its drawn size (resvg does not cap
//!      those). At most [`MAX_RASTER_BYTES`].
//!
//!   The same checks run when the variants job draws the stored original, so neither the
//!   web process nor the worker can be made to allocate past them.
//! - **CSS is read by cssparser**, in `<style>` and in every attribute value: its tokenizer
//!   decodes escapes and comments as a browser does, so `u\72l(`, `\75 rl(` and
//!   `@\69mport` are `url(` and `@import`. Any `url(`/`src(` not pointing inside the
//!   document, `@import`, `@font-face`, `image-set()`, `image()`, `cross-fade()`,
//!   `element()`, `expression()` or a bad URL token is reported, and the upload refused.

mod css;
mod expand;
mod limits;
mod raster;
#[cfg(test)]
mod tests;
mod write;

pub use css::css_problem;
pub use limits::{
    MAX_ATTRIBUTES, MAX_ATTRIBUTES_PER_ELEMENT, MAX_DEPTH, MAX_ELEMENTS, MAX_PATH_NUMBERS,
    MAX_RASTER_BYTES, MAX_RENDERED, Refusal,
};
pub use raster::{raster_bytes, rasterize};

use crate::uploads::xml::Problem;
use crate::uploads::{codes, reject, xml};
use shared::error::{AppError, ErrorCode};

use expand::Expansion;
use limits::{LIMITS, MAX_NODES, SVG_NS, invalid};
use raster::{options, raster_budget, raster_size};
use write::write_node;

/// The outcome of sanitising.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sanitized {
    /// The rebuilt document.
    pub svg: String,
    /// What active or external content was dropped, for the creator.
    pub removed: Vec<String>,
}

/// A checked SVG and the size its variants are drawn at.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The rebuilt document.
    pub svg: String,
    /// Raster width.
    pub width: u32,
    /// Raster height.
    pub height: u32,
}

/// Parses and rebuilds `text`, keeping only drawing content, within the budget (see the
/// module documentation). The entry point for anything that has bytes and wants to know
/// what would be stored.
pub fn sanitize(text: &str) -> Result<Sanitized, Refusal> {
    let shape = xml::scan(text.as_bytes(), &LIMITS).map_err(|p| match p {
        Problem::Declarations => Refusal::Declarations,
        Problem::TooComplex(what) => Refusal::TooComplex(format!("more {what} than allowed")),
        Problem::Malformed(why) => Refusal::Invalid(why.to_owned()),
    })?;
    // A bare DOCTYPE declares nothing: blanked, so the parser runs with DTDs off.
    let blanked;
    let text = match shape.doctype {
        Some(range) => {
            let mut t = text.to_owned();
            t.replace_range(range.clone(), &" ".repeat(range.len()));
            blanked = t;
            blanked.as_str()
        }
        None => text,
    };
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => Refusal::TooComplex("too many nodes".into()),
        roxmltree::Error::DtdDetected => Refusal::Declarations,
        e => Refusal::Invalid(e.to_string()),
    })?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(SVG_NS) || root.tag_name().name() != "svg" {
        return Err(Refusal::Invalid("the root element is not <svg>".into()));
    }
    Expansion::check(&doc)?;
    let mut out = String::with_capacity(text.len());
    let mut removed = Vec::new();
    write_node(root, &mut out, &mut removed, true);
    removed.dedup();
    Ok(Sanitized { svg: out, removed })
}

/// Checks an uploaded SVG: it must parse, be safe, describe a drawing with a size, and fit
/// the budget. The rebuilt document it returns is what is stored.
pub fn check(bytes: &[u8]) -> Result<Checked, AppError> {
    let text = std::str::from_utf8(bytes).map_err(invalid)?;
    let sanitized = sanitize(text)?;
    if !sanitized.removed.is_empty() {
        let found = sanitized.removed.join(", ");
        return Err(reject(
            ErrorCode::Validation,
            codes::SVG_UNSAFE,
            format!(
                "This SVG contains active or external content, which uploads may not: {found}. Remove it and upload again."
            ),
        ));
    }
    let tree = usvg::Tree::from_str(&sanitized.svg, &options()).map_err(invalid)?;
    let (width, height) = raster_size(tree.size());
    raster_budget(&tree, width, height)?;
    Ok(Checked {
        svg: sanitized.svg,
        width,
        height,
    })
}
