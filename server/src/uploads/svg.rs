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
//! - **Sniffer and parser read one grammar.** `app::uploads::xml` is the lexical pass both
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

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use app::error::{AppError, ErrorCode};
use app::uploads::xml::{self, Problem};
use app::uploads::{codes, reject};

use crate::create::provider::RgbaImage;

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// Most XML nodes (elements, text runs, comments, PIs) an upload may have.
const MAX_NODES: u32 = 200_000;
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

const LIMITS: xml::Limits = xml::Limits {
    elements: MAX_ELEMENTS,
    depth: MAX_DEPTH,
    attributes_per_element: MAX_ATTRIBUTES_PER_ELEMENT,
    attributes: MAX_ATTRIBUTES,
};
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

fn invalid(detail: impl std::fmt::Display) -> AppError {
    Refusal::Invalid(detail.to_string()).into()
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

/// The size of a node's subtree as usvg expands it.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    /// Elements, copies included.
    elements: u64,
    /// Elements plus text characters plus a sixteenth of the coordinates: what usvg builds.
    weight: u64,
    /// Path and polygon coordinates.
    numbers: u64,
    /// Levels of nesting.
    height: u32,
}

impl Cost {
    fn add(&mut self, other: Cost, times: u64) {
        self.elements = self
            .elements
            .saturating_add(other.elements.saturating_mul(times));
        self.weight = self
            .weight
            .saturating_add(other.weight.saturating_mul(times));
        self.numbers = self
            .numbers
            .saturating_add(other.numbers.saturating_mul(times));
    }
}

/// Stage 2 of the budget: the drawing as usvg will expand it.
struct Expansion<'a, 'input> {
    ids: HashMap<&'a str, roxmltree::Node<'a, 'input>>,
    memo: HashMap<roxmltree::NodeId, Cost>,
    visiting: HashSet<roxmltree::NodeId>,
}

fn too_complex(what: &str) -> Refusal {
    Refusal::TooComplex(what.to_owned())
}

impl<'a, 'input> Expansion<'a, 'input> {
    fn check(doc: &'a roxmltree::Document<'input>) -> Result<(), Refusal> {
        let mut ids = HashMap::new();
        for n in doc.descendants().filter(|n| n.is_element()) {
            if let Some(id) = n.attribute("id") {
                ids.entry(id).or_insert(n);
            }
        }
        let mut e = Expansion {
            ids,
            memo: HashMap::new(),
            visiting: HashSet::new(),
        };
        let mut total = e.cost(doc.root_element(), 0)?;
        // A stylesheet's references may apply to every element.
        for style in doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "style")
        {
            for child in style.children().filter(|c| c.is_text()) {
                for id in url_refs(child.text().unwrap_or("")) {
                    if let Some(&target) = e.ids.get(id) {
                        let c = e.cost(target, 1)?;
                        let times = total.elements.max(total.numbers.saturating_add(2));
                        total.add(c, times);
                    }
                }
            }
        }
        Self::within(&total)
    }

    fn within(c: &Cost) -> Result<(), Refusal> {
        if c.weight > MAX_RENDERED {
            return Err(too_complex(
                "more elements than allowed once `use` and references are expanded",
            ));
        }
        if c.numbers > MAX_PATH_NUMBERS {
            return Err(too_complex(
                "more path coordinates than allowed once expanded",
            ));
        }
        Ok(())
    }

    fn cost(&mut self, n: roxmltree::Node<'a, 'input>, depth: u32) -> Result<Cost, Refusal> {
        if let Some(c) = self.memo.get(&n.id()) {
            if depth + c.height > MAX_DEPTH {
                return Err(too_complex("nested too deeply through `use`"));
            }
            return Ok(*c);
        }
        if depth >= MAX_DEPTH {
            return Err(too_complex("nested too deeply through `use`"));
        }
        if !self.visiting.insert(n.id()) {
            // A reference to itself: usvg skips it.
            return Ok(Cost::default());
        }
        let mut c = Cost {
            elements: 1,
            weight: 1,
            numbers: 0,
            height: 1,
        };
        for attr in n.attributes() {
            if matches!(attr.name(), "d" | "points") {
                let k = count_numbers(attr.value());
                c.numbers = c.numbers.saturating_add(k);
                c.weight = c.weight.saturating_add(k / 16);
            }
        }
        let in_text = matches!(n.tag_name().name(), "text" | "tspan" | "textPath");
        let mut below = 0;
        for child in n.children() {
            if child.is_element() {
                let cc = self.cost(child, depth + 1)?;
                c.add(cc, 1);
                below = below.max(cc.height);
            } else if in_text && child.is_text() {
                let chars = child.text().map_or(0, |t| t.chars().count()) as u64;
                c.weight = c.weight.saturating_add(chars);
            }
            Self::within(&c)?;
        }
        // `use` (and any element's `href`) copies its target.
        let href = n
            .attribute("href")
            .or_else(|| n.attribute((XLINK_NS, "href")));
        if let Some(target) = href
            .and_then(|h| h.trim().strip_prefix('#'))
            .and_then(|id| self.ids.get(id).copied())
        {
            let tc = self.cost(target, depth + 1)?;
            c.add(tc, 1);
            below = below.max(tc.height);
        }
        // A `url(#…)` may copy its target for every element inheriting it, a marker once
        // per vertex.
        for attr in n.attributes() {
            for id in url_refs(attr.value()) {
                let Some(&target) = self.ids.get(id) else {
                    continue;
                };
                let tc = self.cost(target, depth + 1)?;
                let times = if target.tag_name().name() == "marker" {
                    c.numbers.saturating_add(2)
                } else {
                    c.elements
                };
                c.add(tc, times);
                below = below.max(tc.height);
                Self::within(&c)?;
            }
        }
        c.height = 1 + below;
        Self::within(&c)?;
        self.visiting.remove(&n.id());
        self.memo.insert(n.id(), c);
        Ok(c)
    }
}

/// How many numbers path data or a points list holds, at most.
fn count_numbers(v: &str) -> u64 {
    let mut n = 0;
    let mut in_number = false;
    for b in v.bytes() {
        let part = b.is_ascii_digit() || b == b'.';
        if part && !in_number {
            n += 1;
        }
        in_number = part;
    }
    n
}

/// The ids of the `url(#id)` references in `v`.
fn url_refs(v: &str) -> impl Iterator<Item = &str> {
    let lower = v.to_ascii_lowercase();
    let starts: Vec<usize> = lower.match_indices("url(").map(|(i, _)| i + 4).collect();
    starts.into_iter().filter_map(move |i| {
        let rest = v[i..].trim_start_matches(|c: char| c.is_whitespace() || c == '\'' || c == '"');
        let id = rest.strip_prefix('#')?;
        let end = id
            .find(|c: char| c == ')' || c == '\'' || c == '"' || c.is_whitespace())
            .unwrap_or(id.len());
        Some(&id[..end])
    })
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
        } else if let Some(what) = css_problem(value) {
            removed.push(format!("{what} in {attr_name}"));
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
            if local == "style" {
                let found = css_problem(text).or_else(|| {
                    (has_external_url(text) || compact_lower(text).contains("@import"))
                        .then_some("an external reference")
                });
                if let Some(what) = found {
                    removed.push(format!("{what} in a stylesheet"));
                    continue;
                }
            }
            out.push_str(&escape_text(text));
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

/// The first thing in `css` (a stylesheet, a declaration list or a value) that could fetch
/// or run something, as cssparser tokenizes it: escapes and comments are read as a browser
/// reads them, so `u\72l(` is `url(` and `@\69mport` is `@import`.
pub fn css_problem(css: &str) -> Option<&'static str> {
    let mut input = cssparser::ParserInput::new(css);
    let mut parser = cssparser::Parser::new(&mut input);
    css_walk(&mut parser, 0).err()
}

type CssError<'i> = cssparser::ParseError<'i, &'static str>;

fn css_reason(e: CssError<'_>) -> Result<(), &'static str> {
    match e.kind {
        cssparser::ParseErrorKind::Custom(what) => Err(what),
        // A block that does not tokenize to its end: nothing more in it is read.
        cssparser::ParseErrorKind::Basic(_) => Ok(()),
    }
}

fn css_walk<'i>(p: &mut cssparser::Parser<'i, '_>, depth: u32) -> Result<(), &'static str> {
    use cssparser::Token;
    if depth > 32 {
        return Err("CSS nested too deeply");
    }
    loop {
        let token = match p.next_including_whitespace_and_comments() {
            Ok(t) => t.clone(),
            Err(_) => return Ok(()),
        };
        match token {
            Token::AtKeyword(name)
                if ["import", "font-face", "namespace"]
                    .iter()
                    .any(|k| name.eq_ignore_ascii_case(k)) =>
            {
                return Err("an @import or @font-face");
            }
            Token::UnquotedUrl(url) if !url.trim_start().starts_with('#') => {
                return Err("an external url()");
            }
            Token::BadUrl(_) => return Err("an unreadable url()"),
            Token::Function(name) => {
                let lower = name.to_ascii_lowercase();
                if lower == "url" || lower == "src" {
                    // One string naming something inside the document, and nothing else.
                    let local = p.parse_nested_block(|p| {
                        let mut local = false;
                        let mut seen = false;
                        while let Ok(t) = p.next() {
                            local = !seen
                                && matches!(t, Token::QuotedString(s) if s.trim_start().starts_with('#'));
                            seen = true;
                        }
                        Ok::<_, CssError<'i>>(local)
                    });
                    if !local.unwrap_or(false) {
                        return Err("an external url()");
                    }
                } else if [
                    "image-set",
                    "-webkit-image-set",
                    "image",
                    "cross-fade",
                    "-webkit-cross-fade",
                    "element",
                    "-moz-element",
                    "expression",
                    "paint",
                ]
                .contains(&lower.as_str())
                {
                    return Err("an external image function");
                } else {
                    let r = p.parse_nested_block(|p| {
                        css_walk(p, depth + 1).map_err(|what| p.new_custom_error(what))
                    });
                    r.or_else(css_reason)?;
                }
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                let r = p.parse_nested_block(|p| {
                    css_walk(p, depth + 1).map_err(|what| p.new_custom_error(what))
                });
                r.or_else(css_reason)?;
            }
            Token::QuotedString(v) | Token::Ident(v)
                if compact_lower(&v).contains("javascript:") =>
            {
                return Err("a javascript: URL");
            }
            _ => {}
        }
    }
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// `s` as an attribute value: besides markup, the white space a parser would turn into
/// spaces (`\t`, `\n`, `\r`) is written as character references, so the value reads back
/// exactly and the rebuilt document is its own sanitisation.
fn escape(s: &str) -> String {
    escape_with(s, true)
}

/// `s` as text: besides markup, `\r` as a reference (a parser reads a raw one as `\n`).
fn escape_text(s: &str) -> String {
    escape_with(s, false)
}

fn escape_with(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
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

/// Stage 3 of the budget: the pixmaps resvg would hold at once, at most [`MAX_RASTER_BYTES`].
fn raster_budget(tree: &usvg::Tree, width: u32, height: u32) -> Result<(), Refusal> {
    let bytes = raster_bytes(tree, width, height);
    if bytes > MAX_RASTER_BYTES as f64 {
        return Err(Refusal::TooComplex(format!(
            "drawing it needs about {} MB of layers, more than {} MB",
            (bytes / 1e6).round(),
            MAX_RASTER_BYTES / 1_000_000
        )));
    }
    Ok(())
}

struct Canvas {
    scale: f32,
    max_w: f64,
    max_h: f64,
}

/// An upper bound on the bytes of the pixmaps resvg holds at once drawing `tree` at
/// `width` x `height`: the canvas and our copy of its pixels, plus the worst path of
/// layers, masks, clips, filter results and pattern tiles through the tree.
pub fn raster_bytes(tree: &usvg::Tree, width: u32, height: u32) -> f64 {
    let canvas = Canvas {
        scale: width as f32 / tree.size().width().max(1.0),
        max_w: f64::from(width) * 5.0,
        max_h: f64::from(height) * 5.0,
    };
    2.0 * f64::from(width) * f64::from(height) * 4.0 + group_bytes(tree.root(), &canvas)
}

fn group_bytes(g: &usvg::Group, c: &Canvas) -> f64 {
    let mut own = 0.0;
    if g.should_isolate() {
        let r = g.abs_layer_bounding_box();
        let s = f64::from(c.scale);
        // resvg pads a layer by 2 px a side and caps it at 5 x 5 canvases.
        let w = (f64::from(r.width()) * s + 4.0).min(c.max_w);
        let h = (f64::from(r.height()) * s + 4.0).min(c.max_h);
        let layer = w.max(1.0) * h.max(1.0) * 4.0;
        // Filters run one after another; each holds its source and every primitive result.
        let primitives = g
            .filters()
            .iter()
            .map(|f| f.primitives().len() + 2)
            .max()
            .unwrap_or(0);
        own = layer * (1.0 + primitives as f64);
        let clip = g.clip_path().map_or(0.0, |cp| clip_bytes(cp, layer, c));
        let mask = g.mask().map_or(0.0, |m| mask_bytes(m, layer, c));
        own += clip.max(mask);
    }
    own + g
        .children()
        .iter()
        .map(|n| node_bytes(n, c))
        .fold(0.0, f64::max)
}

fn clip_bytes(cp: &usvg::ClipPath, layer: f64, c: &Canvas) -> f64 {
    layer
        + group_bytes(cp.root(), c)
        + cp.clip_path()
            .map_or(0.0, |inner| clip_bytes(inner, layer, c))
}

fn mask_bytes(m: &usvg::Mask, layer: f64, c: &Canvas) -> f64 {
    layer + group_bytes(m.root(), c) + m.mask().map_or(0.0, |inner| mask_bytes(inner, layer, c))
}

fn node_bytes(n: &usvg::Node, c: &Canvas) -> f64 {
    match n {
        usvg::Node::Group(g) => group_bytes(g, c),
        usvg::Node::Text(t) => group_bytes(t.flattened(), c),
        usvg::Node::Image(_) => 0.0,
        usvg::Node::Path(p) => {
            let paints = [p.fill().map(|f| f.paint()), p.stroke().map(|s| s.paint())];
            paints
                .into_iter()
                .flatten()
                .map(|paint| match paint {
                    usvg::Paint::Pattern(pat) => {
                        let ts = usvg::Transform::from_scale(c.scale, c.scale)
                            .pre_concat(p.abs_transform())
                            .pre_concat(pat.transform());
                        let (sx, sy) = ts.get_scale();
                        let r = pat.rect();
                        // resvg draws one tile at its drawn size, uncapped.
                        f64::from(r.width() * sx).round().max(1.0)
                            * f64::from(r.height() * sy).round().max(1.0)
                            * 4.0
                            + group_bytes(pat.root(), c)
                    }
                    _ => 0.0,
                })
                .fold(0.0, f64::max)
        }
    }
}

/// Rasterises a sanitised document (see [`check`]) to RGBA pixels, within the same budget.
pub fn rasterize(svg: &str) -> Result<RgbaImage, String> {
    let tree = usvg::Tree::from_str(svg, &options()).map_err(|e| e.to_string())?;
    let (width, height) = raster_size(tree.size());
    raster_budget(&tree, width, height).map_err(|e| e.to_string())?;
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

    fn wrap(body: &str) -> String {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">{body}</svg>"##
        )
    }

    #[test]
    fn css_is_read_as_a_browser_reads_it() {
        for evil in [
            r"rect { fill: u\72l(https://evil.example/p) }",
            r"rect { fill: \75 rl(https://evil.example/p) }",
            r"rect { fill: \75\72\6c(https://evil.example/p) }",
            r#"rect { fill: URL("https://evil.example/p") }"#,
            r"@\69mport 'https://evil.example/c.css';",
            r"@IMPORT url(https://evil.example/c.css);",
            r"@font-face { font-family: x; src: local(x) }",
            r"rect { fill: image-set('https://evil.example/a.png' 1x) }",
            r"rect { background: -webkit-image-set(url(x) 1x) }",
            r"rect { width: expression(alert(1)) }",
            r"rect { fill: src('https://evil.example/p') }",
            r"@media screen { rect { fill: u\rl(//evil.example/p) } }",
            r"rect { fill: url(#a) url(https://evil.example/p) }",
            r##"rect { fill: url("#a" "x") }"##,
            r"rect { fill: url(https://evil.example/p",
        ] {
            assert!(css_problem(evil).is_some(), "{evil}");
            let doc = wrap(&format!("<style>{}</style>", escape(evil)));
            let s = sanitize(&doc).unwrap();
            assert!(!s.removed.is_empty(), "{evil}: {}", s.svg);
            let attr = wrap(&format!(r#"<rect style="{}"/>"#, escape(evil)));
            assert!(!sanitize(&attr).unwrap().removed.is_empty(), "{evil}");
        }
        for fine in [
            "rect { fill: url(#grad) } /* url(https://x) is only a comment */",
            "rect { fill: url( '#grad' ) ; stroke: #00ff00 }",
            "@media (min-width: 10px) { circle { opacity: .5 } }",
            "fill:url(#a);stroke-width:2",
        ] {
            assert_eq!(css_problem(fine), None, "{fine}");
        }
    }

    #[test]
    fn no_dtd_is_read_and_declarations_are_refused() {
        let laughs = format!(
            r#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol">{}]><svg xmlns="http://www.w3.org/2000/svg"><text>&j;</text></svg>"#,
            (b'b'..=b'j')
                .map(|c| {
                    let prev = (c - 1) as char;
                    format!(
                        "<!ENTITY {} \"{}\">",
                        c as char,
                        format!("&{prev};").repeat(10)
                    )
                })
                .collect::<String>()
        );
        for doc in [
            laughs.as_str(),
            r#"<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>"#,
            r#"<!DOCTYPE svg [<!ENTITY % p SYSTEM "https://evil.example/x.dtd"> %p;]><svg xmlns="http://www.w3.org/2000/svg"/>"#,
            r#"<!doctype svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg"/>"#,
            r#"<!doctype svg><svg xmlns="http://www.w3.org/2000/svg"/>"#,
            "\u{feff}<?xml version=\"1.0\"?><?pi x?><!DOCTYPE svg [<!ENTITY x \"y\">]><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            r#"<svg xmlns="http://www.w3.org/2000/svg"><!ENTITY x "y"></svg>"#,
        ] {
            assert_eq!(sanitize(doc).unwrap_err(), Refusal::Declarations, "{doc}");
            let e = check(doc.as_bytes()).unwrap_err();
            assert_eq!(e.fields[0].code, codes::SVG_DOCTYPE, "{doc}");
        }
        // Entities without a DTD are unknown, not expanded.
        let e = check(wrap("<text>&xxe;</text>").as_bytes()).unwrap_err();
        assert_eq!(e.fields[0].code, codes::SVG_INVALID);
        // A bare DOCTYPE (as Illustrator writes) declares nothing and is left out.
        let bare = format!(
            "\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n{}",
            wrap(r##"<rect width="10" height="10" fill="#ff0000"/>"##)
        );
        let s = check(bare.as_bytes()).unwrap();
        assert!(
            s.svg.starts_with("<svg") && !s.svg.contains("DOCTYPE"),
            "{}",
            s.svg
        );
        // Declarations inside a comment or CDATA section are text.
        let s = sanitize(&wrap(
            "<!-- <!DOCTYPE x [<!ENTITY a 'b'>]> --><style><![CDATA[ /* <!ENTITY a 'b'> */ rect { fill: #00f } ]]></style>",
        ))
        .unwrap();
        assert!(s.removed.is_empty() && !s.svg.contains("<!"), "{}", s.svg);
    }

    #[test]
    fn the_sanitised_document_is_its_own_sanitisation() {
        let doc = wrap(
            r##"<!-- c --><metadata><x:y xmlns:x="urn:x"/></metadata><title>a &amp; b</title><defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient></defs><rect width='10' height="10" fill="url(#g)" style="stroke:#000" class="a&#10;b&#9;c&#13;"/><text x="1" y="5">&lt;hi&gt;&#13;</text>"##,
        );
        let once = sanitize(&doc).unwrap();
        assert!(once.removed.is_empty(), "{:?}", once.removed);
        let twice = sanitize(&once.svg).unwrap();
        assert_eq!(twice.svg, once.svg);
        assert!(!once.svg.contains("metadata") && !once.svg.contains("<!--"));
    }

    #[test]
    fn the_budget_stops_what_would_not_fit() {
        // Billion laughs through `use`: ten copies of ten copies of … a rectangle.
        let mut body = String::from(r#"<defs><rect id="l0" width="1" height="1"/>"#);
        for i in 1..10 {
            body.push_str(&format!(r#"<g id="l{i}">"#));
            for _ in 0..10 {
                body.push_str(&format!(r##"<use href="#l{}"/>"##, i - 1));
            }
            body.push_str("</g>");
        }
        body.push_str(r##"</defs><use href="#l9"/>"##);
        let too_complex = |doc: &str| {
            let e = check(doc.as_bytes()).unwrap_err();
            assert_eq!(e.fields[0].code, codes::SVG_TOO_COMPLEX, "{}", e.message);
        };
        too_complex(&wrap(&body));
        // Nesting deeper than the recursion can afford, in the file or through `use`.
        too_complex(&wrap(&format!(
            "{}{}",
            "<g>".repeat(50_000),
            "</g>".repeat(50_000)
        )));
        let chain: String = (1..150)
            .map(|i| format!(r##"<g id="c{i}"><use href="#c{}"/></g>"##, i - 1))
            .collect();
        too_complex(&wrap(&format!(
            r##"<defs><g id="c0"/>{chain}</defs><use href="#c149"/>"##
        )));
        // Too many attributes on one element (the parser's check for duplicates is quadratic).
        let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
        too_complex(&wrap(&format!("<rect{attrs}/>")));
        // A pattern tile drawn far larger than the canvas.
        too_complex(&wrap(
            r##"<defs><pattern id="p" width="100000" height="100000" patternUnits="userSpaceOnUse"><rect width="10" height="10"/></pattern></defs><rect width="10" height="10" fill="url(#p)"/>"##,
        ));
        // Nested layers, each as large as resvg allows.
        let layers = format!(
            "{}<rect x=\"-20\" y=\"-20\" width=\"50\" height=\"50\"/>{}",
            r#"<g opacity="0.9">"#.repeat(20),
            "</g>".repeat(20)
        );
        too_complex(&wrap(&layers));
        // A marker on every vertex of a long path.
        let marker = format!(
            r##"<defs><marker id="m">{}</marker></defs><path marker-mid="url(#m)" d="M0 0{}"/>"##,
            r#"<circle r="1"/>"#.repeat(100),
            " L1 1".repeat(5_000)
        );
        too_complex(&wrap(&marker));
        // What a real drawing does still fits: some nesting, layers, a few uses.
        let fine = format!(
            r##"{}<defs><circle id="d" r="2"/></defs><g opacity="0.5"><use href="#d"/><use href="#d" x="5"/></g>{}"##,
            "<g>".repeat(60),
            "</g>".repeat(60)
        );
        let checked = check(wrap(&fine).as_bytes()).unwrap();
        rasterize(&checked.svg).unwrap();
    }
}
