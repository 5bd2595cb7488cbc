//! The SVG sanitiser's tests: what is kept, what is refused and why, and the limits.

use super::write::escape;
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
