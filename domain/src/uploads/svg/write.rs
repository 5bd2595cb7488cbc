//! Writing the sanitised document back out from the parse tree, keeping only allowed
//! elements and attributes, escaped.

use std::fmt::Write as _;

use super::css::{compact_lower, css_problem};
use super::limits::{ACTIVE_ELEMENTS, ELEMENTS, SVG_NS, XLINK_NS, XML_NS};

pub(super) fn write_node(
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

/// Whether a value has a `url(...)` pointing anywhere but inside the document.
pub(super) fn has_external_url(value: &str) -> bool {
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

pub(super) fn short(s: &str) -> String {
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
pub(super) fn escape(s: &str) -> String {
    escape_with(s, true)
}

/// `s` as text: besides markup, `\r` as a reference (a parser reads a raw one as `\n`).
pub(super) fn escape_text(s: &str) -> String {
    escape_with(s, false)
}

pub(super) fn escape_with(s: &str, attribute: bool) -> String {
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
