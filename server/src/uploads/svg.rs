//! SVG uploads: parsed, sanitised by allowlist and rasterised for their variants.
//!
//! SVG is a document format that can carry scripts, event handlers, HTML (`foreignObject`)
//! and references to other resources. [`sanitize`] rebuilds the document from the parse tree
//! keeping only SVG drawing elements and presentation attributes, and reports every active or
//! external construct it dropped. An upload with any such construct is refused (`svg_unsafe`,
//! naming what was found) rather than silently changed, so what a creator gets back is what
//! they sent; the rebuilt document is what the variants are drawn from, so even constructs we
//! did not think of (unknown elements and attributes) never reach the rasteriser.

use std::fmt::Write as _;

use app::error::{AppError, ErrorCode};
use app::uploads::{codes, reject};

use crate::create::provider::RgbaImage;

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// Most XML nodes an upload may have.
const MAX_NODES: u32 = 200_000;
/// The longest side variants are drawn at; small drawings are drawn at least this big.
const MAX_RASTER_SIDE: f32 = 2048.0;
const MIN_RASTER_SIDE: f32 = 1024.0;

/// Elements kept: shapes, text, structure, paint servers, clipping, masking and filters.
const ELEMENTS: &[&str] = &[
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
const ACTIVE_ELEMENTS: &[&str] = &[
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

fn invalid(detail: impl std::fmt::Display) -> AppError {
    tracing::debug!(%detail, "SVG upload refused");
    reject(
        ErrorCode::Validation,
        codes::SVG_INVALID,
        "This SVG could not be read as a drawing.",
    )
}

/// Parses and rebuilds `text`, keeping only drawing content.
pub fn sanitize(text: &str) -> Result<Sanitized, String> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(SVG_NS) || root.tag_name().name() != "svg" {
        return Err("the root element is not <svg>".into());
    }
    let mut out = String::with_capacity(text.len());
    let mut removed = Vec::new();
    write_node(root, &mut out, &mut removed, true);
    removed.dedup();
    Ok(Sanitized { svg: out, removed })
}

fn write_node(
    node: roxmltree::Node<'_, '_>,
    out: &mut String,
    removed: &mut Vec<String>,
    root: bool,
) {
    let name = node.tag_name();
    let local = name.name();
    if name.namespace() != Some(SVG_NS) || !ELEMENTS.contains(&local) {
        if ACTIVE_ELEMENTS
            .iter()
            .any(|a| a.eq_ignore_ascii_case(local))
        {
            removed.push(format!("a <{local}> element"));
        } else if name.namespace() == Some("http://www.w3.org/1999/xhtml") {
            removed.push(format!("an HTML <{local}> element"));
        }
        // Unknown elements (editor metadata and the like) go without comment, with their
        // content.
        return;
    }
    out.push('<');
    out.push_str(local);
    if root {
        let _ = write!(out, r#" xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}""#);
    }
    for attr in node.attributes() {
        let attr_name = attr.name();
        let value = attr.value();
        let lowered = attr_name.to_ascii_lowercase();
        if lowered.starts_with("on") {
            removed.push(format!("an event handler ({attr_name})"));
            continue;
        }
        if compact_lower(value).contains("javascript:") {
            removed.push("a javascript: URL".to_owned());
            continue;
        }
        let prefix = match attr.namespace() {
            None => "",
            Some(XLINK_NS) => "xlink:",
            Some(XML_NS) => "xml:",
            // Editor namespaces (inkscape:, sodipodi:) carry nothing that draws.
            Some(_) => continue,
        };
        if attr_name == "href" {
            if !value.trim_start().starts_with('#') {
                removed.push(format!("an external reference ({})", short(value)));
                continue;
            }
        } else if has_external_url(value) {
            removed.push(format!("an external reference in {attr_name}"));
            continue;
        }
        let _ = write!(out, r#" {prefix}{attr_name}="{}""#, escape(value));
    }
    out.push('>');
    for child in node.children() {
        if child.is_element() {
            write_node(child, out, removed, false);
        } else if child.is_text() {
            let text = child.text().unwrap_or("");
            if local == "style"
                && (has_external_url(text) || compact_lower(text).contains("@import"))
            {
                removed.push("an external reference in a stylesheet".to_owned());
                continue;
            }
            out.push_str(&escape(text));
        }
    }
    let _ = write!(out, "</{local}>");
}

/// Lowercase with whitespace and control characters removed: how browsers read URL schemes
/// (`java\tscript:` is still `javascript:`).
fn compact_lower(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a value has a `url(...)` pointing anywhere but inside the document.
fn has_external_url(value: &str) -> bool {
    let v = compact_lower(value);
    let mut rest = v.as_str();
    while let Some(i) = rest.find("url(") {
        let target = rest[i + 4..].trim_start_matches(['\'', '"']);
        if !target.starts_with('#') {
            return true;
        }
        rest = &rest[i + 4..];
    }
    false
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_owned()
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn options() -> usvg::Options<'static> {
    usvg::Options {
        fontdb: crate::create::render::fonts(),
        font_family: "Inter".to_owned(),
        // No file or network access: a reference that slipped through resolves to nothing.
        resources_dir: None,
        ..usvg::Options::default()
    }
}

/// Checks an uploaded SVG: it must parse, be safe, and describe a drawing with a size.
pub fn check(bytes: &[u8]) -> Result<Checked, AppError> {
    let text = std::str::from_utf8(bytes).map_err(invalid)?;
    let sanitized = sanitize(text).map_err(invalid)?;
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
    Ok(Checked {
        svg: sanitized.svg,
        width,
        height,
    })
}

/// The size a drawing of `size` is rasterised at: its own size, scaled so the longer side is
/// between 1024 and 2048 pixels.
fn raster_size(size: usvg::Size) -> (u32, u32) {
    let (w, h) = (size.width().max(1.0), size.height().max(1.0));
    let long = w.max(h);
    let scale = long.clamp(MIN_RASTER_SIDE, MAX_RASTER_SIDE) / long;
    (
        ((w * scale).round() as u32).max(1),
        ((h * scale).round() as u32).max(1),
    )
}

/// Rasterises a sanitised document (see [`check`]) to RGBA pixels.
pub fn rasterize(svg: &str) -> Result<RgbaImage, String> {
    let tree = usvg::Tree::from_str(svg, &options()).map_err(|e| e.to_string())?;
    let (width, height) = raster_size(tree.size());
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| format!("no {width}x{height} pixmap"))?;
    let scale = width as f32 / tree.size().width().max(1.0);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // tiny-skia keeps premultiplied alpha; encoders expect straight alpha.
    let pixels = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    Ok(RgbaImage {
        width,
        height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAWING: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50"><rect width="100" height="50" fill="#e63946"/></svg>"##;

    #[test]
    fn a_clean_drawing_passes_and_draws() {
        let checked = check(DRAWING.as_bytes()).unwrap();
        assert_eq!((checked.width, checked.height), (1024, 512));
        let image = rasterize(&checked.svg).unwrap();
        assert_eq!(&image.pixels[..4], &[0xe6, 0x39, 0x46, 0xff]);
    }

    #[test]
    fn active_and_external_content_is_found_and_dropped() {
        let evil = r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10" onload="alert(1)">
            <script>alert(1)</script>
            <foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>
            <use xlink:href="https://evil.example/x.svg#a"/>
            <a href="javascript:alert(1)"><rect width="10" height="10"/></a>
            <rect width="10" height="10" fill="url(https://evil.example/p)" style="fill:url( 'http://x' )"/>
            <style>@import url(https://evil.example/c.css);</style>
            <rect width="10" height="10" fill="#00ff00"/>
        </svg>"##;
        let s = sanitize(evil).unwrap();
        for gone in [
            "<script",
            "onload",
            "foreignObject",
            "evil.example",
            "javascript",
            "@import",
        ] {
            assert!(!s.svg.contains(gone), "{gone} survived: {}", s.svg);
        }
        assert!(s.svg.contains(r##"fill="#00ff00""##), "{}", s.svg);
        assert!(s.removed.len() >= 6, "{:?}", s.removed);
        let err = check(evil.as_bytes()).unwrap_err();
        assert_eq!(err.fields[0].code, codes::SVG_UNSAFE);
        // The rebuilt document keeps its drawing: the green square covers the picture.
        let image = rasterize(&s.svg).unwrap();
        let centre =
            (image.width as usize * (image.height as usize / 2) + image.width as usize / 2) * 4;
        assert_eq!(&image.pixels[centre..centre + 4], &[0, 255, 0, 255]);
    }

    #[test]
    fn not_svg_is_invalid() {
        for bad in [
            "<html></html>",
            "<svg",
            "",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/>",
        ] {
            let e = check(bad.as_bytes()).unwrap_err();
            assert_eq!(e.fields[0].code, codes::SVG_INVALID, "{bad}");
        }
    }
}
