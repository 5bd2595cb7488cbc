//! A lexical pass over an XML document, shared by the type sniffer and the SVG inspection on
//! the server, so both read the same bytes the same way.
//!
//! It follows XML's lexical grammar exactly where it matters for them: comments, processing
//! instructions, CDATA sections, quoted attribute values and a document type declaration with
//! its internal subset (its own quoted literals, comments and PIs) are each skipped as one
//! token, so nothing inside one of them can look like an element. Two things come out of it:
//!
//! - [`root_element`]: where the root element starts and its name. The sniffer calls a file
//!   SVG only when this says `svg` (or `prefix:svg`); the parser then requires that same
//!   element to be `svg` in the SVG namespace. A `<svg` that only appears inside a comment, a
//!   PI or a DOCTYPE is invisible to both.
//! - [`scan`]: the shape of the whole document (elements, nesting, attributes) against
//!   [`Limits`], and any DOCTYPE. It runs before the parser allocates anything, because the
//!   parser's cost is not bounded by its node limit alone (attributes are not nodes, and its
//!   duplicate-attribute check is quadratic in an element's attributes).
//!
//! On well-formed XML the pass is exact. On malformed input it may disagree with the parser
//! only after the first error, and the parser stops at that error, so the limits hold for
//! everything the parser builds.

use std::ops::Range;

/// Bounds on a document's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most elements.
    pub elements: u32,
    /// Deepest nesting of elements (the root is depth 1).
    pub depth: u32,
    /// Most attributes (namespace declarations included) on one element.
    pub attributes_per_element: u32,
    /// Most attributes in the document.
    pub attributes: u32,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Elements.
    pub elements: u32,
    /// Deepest nesting.
    pub depth: u32,
    /// Attributes.
    pub attributes: u32,
    /// The byte range of a document type declaration without an internal subset
    /// (`<!DOCTYPE svg PUBLIC "…" "…">`, as some editors write), if there is one.
    pub doctype: Option<Range<usize>>,
}

/// Why a document is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A DOCTYPE with an internal subset, or a markup declaration (`<!ENTITY`, `<!ELEMENT`,
    /// `<!ATTLIST`, `<!NOTATION`, a `<!DOCTYPE` where none may be) anywhere, in any case.
    Declarations,
    /// Over one of the [`Limits`]; names which.
    TooComplex(&'static str),
    /// Not well-formed (or cut off before its root element).
    Malformed(&'static str),
}

const BOM: &[u8] = b"\xef\xbb\xbf";

fn find(s: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    s.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|i| from + i)
}

/// The index just after the token that starts at `i` and ends with `close`.
fn skip_to(s: &[u8], i: usize, open: usize, close: &[u8]) -> Result<usize, Problem> {
    find(s, i + open, close)
        .map(|j| j + close.len())
        .ok_or(Problem::Malformed(
            "a comment, PI or CDATA section is not closed",
        ))
}

/// The index just after a quoted literal starting at `i` (which holds the quote).
fn skip_quoted(s: &[u8], i: usize) -> Result<usize, Problem> {
    let q = s[i];
    s[i + 1..]
        .iter()
        .position(|&b| b == q)
        .map(|j| i + 1 + j + 1)
        .ok_or(Problem::Malformed("a quoted value is not closed"))
}

fn word_at(s: &[u8], i: usize, word: &[u8]) -> bool {
    s.get(i..i + word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
}

/// Whether `<!` at `i` starts a markup declaration (any case: `<!doctype` is not XML, but it
/// is refused for what it means, not passed on as a parse error).
fn is_declaration(s: &[u8], i: usize) -> bool {
    [
        &b"DOCTYPE"[..],
        b"ENTITY",
        b"ELEMENT",
        b"ATTLIST",
        b"NOTATION",
    ]
    .iter()
    .any(|w| word_at(s, i + 2, w))
}

/// Skips a `<!DOCTYPE …>` starting at `i`; returns its end and whether it had an internal
/// subset.
fn skip_doctype(s: &[u8], i: usize) -> Result<(usize, bool), Problem> {
    let mut j = i + 9;
    let mut subset = false;
    while j < s.len() {
        match s[j] {
            b'"' | b'\'' => j = skip_quoted(s, j)?,
            b'[' => {
                subset = true;
                j = skip_subset(s, j + 1)?;
            }
            b'>' => return Ok((j + 1, subset)),
            _ => j += 1,
        }
    }
    Err(Problem::Malformed("the DOCTYPE is not closed"))
}

/// Skips an internal subset from `j` (just after its `[`) to just after its `]`.
fn skip_subset(s: &[u8], mut j: usize) -> Result<usize, Problem> {
    while j < s.len() {
        match s[j] {
            b']' => return Ok(j + 1),
            b'<' if s[j..].starts_with(b"<!--") => j = skip_to(s, j, 4, b"-->")?,
            b'<' if s[j..].starts_with(b"<?") => j = skip_to(s, j, 2, b"?>")?,
            b'<' => {
                // A declaration: up to its `>`, quoted literals skipped whole.
                j += 1;
                loop {
                    match s.get(j) {
                        None => return Err(Problem::Malformed("the DOCTYPE is not closed")),
                        Some(b'"' | b'\'') => j = skip_quoted(s, j)?,
                        Some(b'>') => {
                            j += 1;
                            break;
                        }
                        Some(_) => j += 1,
                    }
                }
            }
            _ => j += 1,
        }
    }
    Err(Problem::Malformed("the DOCTYPE is not closed"))
}

/// The prolog: from the start (after a UTF-8 BOM) through the XML declaration, comments,
/// PIs, white space and one DOCTYPE, to the root element's `<`. Returns that index and the
/// DOCTYPE's range and whether it had an internal subset.
#[allow(clippy::type_complexity)]
fn prolog(s: &[u8]) -> Result<(usize, Option<(Range<usize>, bool)>), Problem> {
    let mut i = if s.starts_with(BOM) { BOM.len() } else { 0 };
    let mut doctype = None;
    loop {
        while s.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let rest = &s[i.min(s.len())..];
        if rest.is_empty() {
            return Err(Problem::Malformed("no root element"));
        }
        if rest.starts_with(b"<?") {
            i = skip_to(s, i, 2, b"?>")?;
        } else if rest.starts_with(b"<!--") {
            i = skip_to(s, i, 4, b"-->")?;
        } else if rest.starts_with(b"<!") && word_at(s, i + 2, b"DOCTYPE") && doctype.is_none() {
            let (end, subset) = skip_doctype(s, i)?;
            doctype = Some((i..end, subset || !rest.starts_with(b"<!DOCTYPE")));
            i = end;
        } else if rest.starts_with(b"<!") {
            return Err(if is_declaration(s, i) {
                Problem::Declarations
            } else {
                Problem::Malformed("markup before the root element")
            });
        } else if rest.starts_with(b"<") {
            return Ok((i, doctype));
        } else {
            return Err(Problem::Malformed("text before the root element"));
        }
    }
}

fn name_end(s: &[u8], from: usize) -> usize {
    s[from..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
        .map_or(s.len(), |n| from + n)
}

/// The root element's qualified name, if the prolog before it is well formed and it is in
/// `s` (which may be only the first bytes of a file). A DOCTYPE is skipped whole, internal
/// subset included, whatever its contents.
pub fn root_element(s: &[u8]) -> Option<&[u8]> {
    let (i, _) = prolog(s).ok()?;
    let end = name_end(s, i + 1);
    // The name must end inside `s`: a head cut in the middle of it says nothing.
    (end < s.len()).then(|| &s[i + 1..end])
}

/// Walks the whole document against `limits`. A DOCTYPE with an internal subset, any other
/// markup declaration, or a DOCTYPE not spelt as XML spells it, is [`Problem::Declarations`].
pub fn scan(s: &[u8], limits: &Limits) -> Result<Shape, Problem> {
    let (mut i, doctype) = prolog(s)?;
    let mut shape = Shape::default();
    if let Some((range, subset)) = doctype {
        if subset {
            return Err(Problem::Declarations);
        }
        shape.doctype = Some(range);
    }
    let mut depth: u32 = 0;
    let mut root_done = false;
    while i < s.len() {
        let Some(lt) = s[i..].iter().position(|&b| b == b'<').map(|n| i + n) else {
            break;
        };
        let rest = &s[lt..];
        if rest.starts_with(b"<!--") {
            i = skip_to(s, lt, 4, b"-->")?;
        } else if rest.starts_with(b"<![CDATA[") {
            i = skip_to(s, lt, 9, b"]]>")?;
        } else if rest.starts_with(b"<?") {
            i = skip_to(s, lt, 2, b"?>")?;
        } else if rest.starts_with(b"<!") {
            return Err(if is_declaration(s, lt) {
                Problem::Declarations
            } else {
                Problem::Malformed("unknown markup")
            });
        } else if rest.starts_with(b"</") {
            i = find(s, lt, b">").ok_or(Problem::Malformed("an end tag is not closed"))? + 1;
            depth = depth
                .checked_sub(1)
                .ok_or(Problem::Malformed("an end tag without its start"))?;
            root_done |= depth == 0;
        } else {
            if root_done {
                return Err(Problem::Malformed("a second root element"));
            }
            let mut j = lt + 1;
            let mut attributes: u32 = 0;
            let self_closing = loop {
                match s.get(j) {
                    None => return Err(Problem::Malformed("a start tag is not closed")),
                    Some(b'"' | b'\'') => j = skip_quoted(s, j)?,
                    Some(b'=') => {
                        attributes += 1;
                        j += 1;
                    }
                    Some(b'>') => break s[j - 1] == b'/',
                    Some(_) => j += 1,
                }
            };
            i = j + 1;
            shape.elements += 1;
            shape.attributes += attributes;
            if attributes > limits.attributes_per_element {
                return Err(Problem::TooComplex("attributes on one element"));
            }
            if shape.attributes > limits.attributes {
                return Err(Problem::TooComplex("attributes"));
            }
            if shape.elements > limits.elements {
                return Err(Problem::TooComplex("elements"));
            }
            let d = depth + 1;
            shape.depth = shape.depth.max(d);
            if d > limits.depth {
                return Err(Problem::TooComplex("nesting depth"));
            }
            if self_closing {
                root_done |= depth == 0;
            } else {
                depth = d;
            }
        }
    }
    if !root_done {
        return Err(Problem::Malformed("the root element is not closed"));
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        elements: 100,
        depth: 4,
        attributes_per_element: 3,
        attributes: 10,
    };

    #[test]
    fn the_root_is_found_past_everything_that_may_precede_it() {
        for (doc, root) in [
            ("<svg>", Some("svg")),
            (
                "\u{feff} <?xml version=\"1.0\"?><!-- <html> --><svg:svg x",
                Some("svg:svg"),
            ),
            (
                "<!DOCTYPE html [<!ENTITY a \"<svg>\"> <!-- ]> --> ]><html>",
                Some("html"),
            ),
            ("<!DOCTYPE svg [<!ENTITY a '>'>]><svg>", Some("svg")),
            ("<?pi <svg ?><html>", Some("html")),
            ("<!-- <svg> -->", None),
            ("<!DOCTYPE x [ <svg> ", None),
            ("<sv", None),
            ("text<svg>", None),
        ] {
            assert_eq!(
                root_element(doc.as_bytes()),
                root.map(str::as_bytes),
                "{doc}"
            );
        }
    }

    #[test]
    fn declarations_are_refused_wherever_they_are_markup() {
        for doc in [
            &b"<!DOCTYPE svg [<!ENTITY a \"b\">]><svg/>"[..],
            b"<!doctype svg><svg/>",
            b"<svg><!ENTITY a \"b\"></svg>",
            b"<svg><!DOCTYPE svg></svg>",
            b"<!ENTITY a \"b\"><svg/>",
        ] {
            assert_eq!(
                scan(doc, &L),
                Err(Problem::Declarations),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        // Inside a comment or a CDATA section it is text, not a declaration.
        for doc in [
            &b"<svg><!-- <!DOCTYPE x [<!ENTITY a 'b'>]> --></svg>"[..],
            b"<svg><![CDATA[<!ENTITY a 'b'>]]></svg>",
            b"<svg a='<!ENTITY'/>",
        ] {
            assert!(scan(doc, &L).is_ok(), "{}", String::from_utf8_lossy(doc));
        }
        let bare = b"<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x>\"><svg/>";
        assert_eq!(scan(bare, &L).unwrap().doctype, Some(0..bare.len() - 6));
    }

    #[test]
    fn shape_limits_hold() {
        assert_eq!(
            scan(b"<a><b><c><d><e/></d></c></b></a>", &L),
            Err(Problem::TooComplex("nesting depth"))
        );
        assert_eq!(
            scan(b"<a x='=' y=\"1\" z='' w=''/>", &L),
            Err(Problem::TooComplex("attributes on one element"))
        );
        let shape = scan(b"<a x='=>'><b y='1'/><b/></a>", &L).unwrap();
        assert_eq!((shape.elements, shape.depth, shape.attributes), (3, 2, 2));
    }
}
