//! Inline CSS (`style` attributes and `<style>`): walked with a real CSS parser, refusing
//! anything that could fetch or run.

/// The first thing in `css` (a stylesheet, a declaration list or a value) that could fetch
/// or run something, as cssparser tokenizes it: escapes and comments are read as a browser
/// reads them, so `u\72l(` is `url(` and `@\69mport` is `@import`.
pub fn css_problem(css: &str) -> Option<&'static str> {
    let mut input = cssparser::ParserInput::new(css);
    let mut parser = cssparser::Parser::new(&mut input);
    css_walk(&mut parser, 0).err()
}

pub(super) type CssError<'i> = cssparser::ParseError<'i, &'static str>;

pub(super) fn css_reason(e: CssError<'_>) -> Result<(), &'static str> {
    match e.kind {
        cssparser::ParseErrorKind::Custom(what) => Err(what),
        // A block that does not tokenize to its end: nothing more in it is read.
        cssparser::ParseErrorKind::Basic(_) => Ok(()),
    }
}

pub(super) fn css_walk<'i>(
    p: &mut cssparser::Parser<'i, '_>,
    depth: u32,
) -> Result<(), &'static str> {
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

/// Lowercase with whitespace and control characters removed: how browsers read URL schemes
/// (`java\tscript:` is still `javascript:`).
pub(super) fn compact_lower(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect()
}
