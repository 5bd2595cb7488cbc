//! Replays the fuzz targets' seed corpora and every past finding on stable, so CI keeps what
//! `./dev fuzz` found fixed without nightly or libFuzzer.
//!
//! The bodies are the fuzz crate's own (`fuzz/src/targets.rs`, included as a module), so a
//! property a target checks is checked here on the same inputs. Each target's inputs are
//! `fuzz/corpus/<target>/*` (the committed seeds) and `fuzz/regressions/<target>/*` (inputs
//! that once failed: a crash, a panic or a broken property, kept once fixed).

#[allow(dead_code)]
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs every input of `target` through `body`; fails naming each input that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files
            .iter()
            .any(|f| f.components().any(|c| c.as_os_str() == "corpus")),
        "no seed corpus for {target}"
    );
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("a readable input");
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of `{target}` failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn sniff() {
    replay("sniff", targets::sniff);
}

#[test]
fn svg() {
    replay("svg", targets::svg);
}

#[test]
fn inspect() {
    replay("inspect", targets::inspect);
}

#[test]
fn feed_csv() {
    replay("feed_csv", targets::feed_csv);
}

#[test]
fn feed_json() {
    replay("feed_json", targets::feed_json);
}

#[test]
fn cursor() {
    replay("cursor", targets::cursor);
}

#[test]
fn tokens() {
    replay("tokens", targets::tokens);
}

#[test]
fn forms() {
    replay("forms", targets::forms);
}

/// Writes the seed corpora (`fuzz/corpus/<target>/`): small hand-picked inputs, including
/// the tricks each target is about, and tiny images made with the encoders the server uses.
/// Run it after changing a seed, and commit what it writes:
/// `cargo test -p server --test suite -- --ignored fuzz_corpus::write_seed_corpora`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seed_corpora() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, seeds) in seeds::all() {
        let dir = root.join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

mod seeds {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::DateTime;
    use domain::accounts::tokens::{AccessClaims, TokenKey};
    use domain::gallery::Scope;
    use domain::gallery::cursor::{CursorKey, Position};
    use domain::uploads::Mime;
    use domain::uploads::token::{UploadClaims, UploadKey};
    use uuid::Uuid;

    use super::targets::SECRET;

    type Seeds = Vec<(&'static str, Vec<u8>)>;

    pub fn all() -> Vec<(&'static str, Seeds)> {
        vec![
            ("sniff", sniff()),
            ("svg", svg()),
            ("inspect", inspect()),
            ("feed_csv", feed_csv()),
            ("feed_json", feed_json()),
            ("cursor", cursor()),
            ("tokens", tokens()),
            ("forms", forms()),
        ]
    }

    fn text(seeds: &[(&'static str, &str)]) -> Seeds {
        seeds
            .iter()
            .map(|(n, t)| (*n, t.as_bytes().to_vec()))
            .collect()
    }

    fn sniff() -> Seeds {
        let mut s = text(&[
            (
                "svg.svg",
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>"#,
            ),
            (
                "prolog.svg",
                "\u{feff}<?xml version=\"1.0\"?>\n<!-- x -->\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<svg xmlns=\"http://www.w3.org/2000/svg\"><g/></svg>",
            ),
            (
                "prefixed.svg",
                r#"<?x y?><svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>"#,
            ),
            ("comment.xml", "<!-- <svg> --><html/>"),
            ("pi.xml", "<?pi <svg ?><html/>"),
            (
                "subset.xml",
                "<!DOCTYPE html [<!ENTITY a \"<svg>\"> <!-- ]> --> ]><html>&a;</html>",
            ),
            ("subset-quote.svg", "<!DOCTYPE svg [<!ENTITY a '>'>]><svg/>"),
            ("cdata.xml", "<html><![CDATA[<svg>]]></html>"),
            ("cut.txt", "<sv"),
            ("text-first.txt", "text<svg/>"),
            (
                "shape.xml",
                "<a x='1' y=\"2\"><b/><c z='=>'/><!-- <d/> --><e><f/></e></a>",
            ),
            ("lowercase-doctype.svg", "<!doctype svg><svg/>"),
        ]);
        s.push((
            "long-comment.svg",
            format!("<!--{}--><svg/>", "x".repeat(1100)).into_bytes(),
        ));
        s.push(("png.bin", png_rgba(2, 2)[..16].to_vec()));
        s.push((
            "jpeg.bin",
            vec![0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F'],
        ));
        s.push(("webp.bin", b"RIFF\x10\0\0\0WEBPVP8 ".to_vec()));
        s
    }

    fn svg() -> Seeds {
        const OPEN: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">"#;
        let wrap = |body: &str| format!("{OPEN}{body}</svg>");
        let docs: Vec<(&'static str, String)> = vec![
            ("clean.svg", wrap(r##"<rect width="10" height="10" fill="#e63946"/>"##)),
            (
                "evil.svg",
                wrap(
                    r##"<script>alert(1)</script><foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject><use xlink:href="https://evil.example/x.svg#a"/><a href="javascript:alert(1)"><rect width="1" height="1" onclick="x()"/></a><rect width="10" height="10" fill="url(https://evil.example/p)"/>"##,
                ),
            ),
            (
                "css-escapes.svg",
                wrap(r"<style>rect { fill: u\72l(https://evil.example/p) } @\69mport 'x.css';</style><rect width='1' height='1'/>"),
            ),
            (
                "css-attr.svg",
                wrap(r#"<rect width="1" height="1" style="fill:\75 rl(//evil.example/p)"/><circle r="1" style="fill:url(#g);stroke:#000"/>"#),
            ),
            (
                "css-fine.svg",
                wrap("<style><![CDATA[ rect { fill: url(#g) } /* url(https://x) */ @media (min-width: 1px) { circle { opacity: .5 } } ]]></style><defs><linearGradient id=\"g\"><stop offset=\"0\" stop-color=\"#fff\"/></linearGradient></defs><rect width=\"5\" height=\"5\"/>"),
            ),
            (
                "bare-doctype.svg",
                format!("\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n{}", wrap("<circle r=\"3\"/>")),
            ),
            (
                "entities.svg",
                r#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;">]><svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>"#.to_owned(),
            ),
            (
                "xxe.svg",
                r#"<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>"#.to_owned(),
            ),
            ("entity-in-body.svg", wrap(r#"<!ENTITY x "y">"#)),
            (
                "declarations-as-text.svg",
                wrap("<!-- <!DOCTYPE x [<!ENTITY a 'b'>]> --><style><![CDATA[ /* <!ENTITY a 'b'> */ rect { fill: #00f } ]]></style>"),
            ),
            (
                "editor.svg",
                r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" xmlns:x="http://www.w3.org/1999/xlink" width="8" height="8" inkscape:version="1"><metadata><x:y/></metadata><title>a &amp; b</title><defs><circle id="c" r="1"/></defs><use x:href="#c" xml:space="preserve"/><text x="1" y="5">&lt;hi&gt;</text></svg>"##
                    .to_owned(),
            ),
            (
                "uses.svg",
                wrap(r##"<defs><rect id="l0" width="1" height="1"/><g id="l1"><use href="#l0"/><use href="#l0" x="2"/></g><g id="l2"><use href="#l1"/><use href="#l1" y="2"/></g></defs><use href="#l2"/>"##),
            ),
            (
                "paint.svg",
                wrap(r##"<defs><pattern id="p" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="2" height="2"/></pattern><marker id="m"><circle r="1"/></marker><clipPath id="k"><rect width="5" height="5"/></clipPath><mask id="s"><rect width="5" height="5" fill="#fff"/></mask><filter id="f"><feGaussianBlur stdDeviation="1"/></filter></defs><path d="M0 0 L5 5 L9 1" marker-mid="url(#m)" fill="url(#p)" clip-path="url(#k)" mask="url(#s)" filter="url(#f)"/>"##),
            ),
            ("layers.svg", wrap(r#"<g opacity="0.5"><g opacity="0.5"><rect width="10" height="10"/></g></g>"#)),
            ("not-svg-ns.svg", "<svg><rect/></svg>".to_owned()),
            ("html.svg", "<html></html>".to_owned()),
            ("cut.svg", wrap("<rect")[..60].to_owned()),
            ("no-size.svg", r#"<svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>"#.to_owned()),
        ];
        docs.into_iter().map(|(n, d)| (n, d.into_bytes())).collect()
    }

    fn png_rgba(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let pixels: Vec<u8> = (0..w * h * 4).map(|i| (i * 37) as u8).collect();
        image::RgbaImage::from_raw(w, h, pixels)
            .unwrap()
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), format)
            .unwrap();
        out
    }

    fn crc(bytes: &[u8]) -> u32 {
        let mut c = flate2::Crc::new();
        c.update(bytes);
        c.sum()
    }

    /// `png` with a chunk inserted before its `IEND`.
    fn png_with_chunk(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let iend = png.len() - 12;
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        let body = [&kind[..], data].concat();
        chunk.extend_from_slice(&body);
        chunk.extend_from_slice(&crc(&body).to_be_bytes());
        [&png[..iend], &chunk, &png[iend..]].concat()
    }

    /// A minimal big-endian TIFF with one tag, orientation.
    fn exif_orientation(o: u16) -> Vec<u8> {
        let mut t = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        t.extend_from_slice(&o.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        t
    }

    fn inspect() -> Seeds {
        let small = image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(6, 4, |x, y| {
            image::Rgba([x as u8 * 40, y as u8 * 60, 90, 255])
        }));
        let png = png_rgba(3, 2);
        let gray16 = encode(
            image::DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(3, 3, |x, _| {
                image::Luma([x as u16 * 20_000])
            })),
            image::ImageFormat::Png,
        );
        let jpeg = encode(
            image::DynamicImage::ImageRgb8(small.to_rgb8()),
            image::ImageFormat::Jpeg,
        );
        let exif = [&b"Exif\0\0"[..], &exif_orientation(6)].concat();
        let mut app1 = vec![0xff, 0xe1];
        app1.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        app1.extend_from_slice(&exif);
        app1.extend_from_slice(&[0xff, 0xfe, 0, 7, b'h', b'e', b'l', b'l', b'o']);
        let jpeg_exif = [&jpeg[..2], &app1, &jpeg[2..]].concat();
        let webp_lossless = encode(small.clone(), image::ImageFormat::WebP);
        let lossy = webp::Encoder::from_rgba(small.as_bytes(), 6, 4)
            .encode(50.0)
            .to_vec();
        // An extended WebP: VP8X, the lossless bitstream, and an EXIF chunk.
        let vp8l = &webp_lossless[12..];
        let mut vp8x = b"VP8X\x0a\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0x08, 0, 0, 0]);
        vp8x.extend_from_slice(&[5, 0, 0, 3, 0, 0]);
        let tiff = exif_orientation(3);
        let mut exif_chunk = b"EXIF".to_vec();
        exif_chunk.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
        exif_chunk.extend_from_slice(&tiff);
        if tiff.len() % 2 == 1 {
            exif_chunk.push(0);
        }
        let body = [&b"WEBP"[..], &vp8x, vp8l, &exif_chunk].concat();
        let webp_exif = [&b"RIFF"[..], &(body.len() as u32).to_le_bytes(), &body].concat();
        vec![
            ("rgba.png", png.clone()),
            ("gray16.png", gray16),
            (
                "text-chunk.png",
                png_with_chunk(&png, b"tEXt", b"Comment\0where I live"),
            ),
            (
                "exif-chunk.png",
                png_with_chunk(&png, b"eXIf", &exif_orientation(8)),
            ),
            ("trailing.png", [&png[..], b"PK\x03\x04zip"].concat()),
            ("plain.jpg", jpeg.clone()),
            ("exif.jpg", jpeg_exif),
            ("truncated.jpg", jpeg[..jpeg.len() / 2].to_vec()),
            ("lossless.webp", webp_lossless),
            ("lossy.webp", lossy),
            ("exif.webp", webp_exif),
        ]
    }

    fn feed_csv() -> Seeds {
        text(&[
            (
                "good.csv",
                "topic,hashtag,source,score,observed_at\nGolden  Hour,#GoldenHour,TrendWire,120.5,2026-11-21T10:00:00Z\ncoffee,,trendwire,3,2026-11-20\nlate night,night_owl,wire.io,0,2026-11-22T13:04:00+01:00\n",
            ),
            (
                "reordered.csv",
                "\u{feff}Score , extra, OBSERVED_AT,Source,Topic\n7,x,2026-11-21,feed,Autumn leaves\n",
            ),
            (
                "crlf.csv",
                "topic,source,score,observed_at\r\na b,s,1,2026-11-21\r\n\r\n\r\nc d,s,2,2026-11-21\r\n,,,\r\n",
            ),
            (
                "quoted.csv",
                "topic,source,score,observed_at\n\"multi\nline\",s,1,2026-11-21\n\"a \"\"q\"\"\",s,2,2026-11-21\n",
            ),
            (
                "bad-rows.csv",
                "topic,hashtag,source,score,observed_at\n#,##,socialcraft,-1,2027-01-01\nx,ok,UPPER,NaN,yesterday\ngood one,,s,inf,2026-11-21\nshort,row\n",
            ),
            ("missing-column.csv", "topic,source,score\na,b,1\n"),
            ("header-only.csv", "topic,source,score,observed_at\n"),
            (
                "lone-cr.csv",
                "topic,source,score,observed_at\ra b,s,1,2026-11-21\rc d,s,x,2026-11-21",
            ),
        ])
    }

    fn feed_json() -> Seeds {
        let mut s = text(&[
            (
                "good.json",
                r##"[{"topic":"Golden Hour","hashtag":"#GoldenHour","source":"TrendWire","score":120.5,"observed_at":"2026-11-21T10:00:00Z"},
{"topic":"coffee","source":"trendwire","score":"3","observed_at":"2026-11-20"}]"##,
            ),
            (
                "bad-rows.json",
                "[\n{\"topic\":1,\"source\":null,\"score\":[1],\"observed_at\":\"\"},\n  7,\n\"x\",\n{\"TOPIC\":\"ok\",\"Source\":\"s\",\"score\":1e400,\"observed_at\":\"2026-11-21\"}\n]",
            ),
            ("not-array.json", r#"{"topic":"a"}"#),
            ("numbers.json", "[1, 2, 3]"),
            ("empty.json", "  [ ]  "),
            ("broken.json", r#"[{"topic":"a","#),
        ]);
        // A length that is a multiple of 16 runs the row-limit check.
        let mut one =
            String::from(r#"[{"topic":"sea","source":"s","score":1,"observed_at":"2026-11-21"}]"#);
        while one.len() % 16 != 0 {
            one.push(' ');
        }
        s.push(("row-limit.json", one.into_bytes()));
        s
    }

    fn position() -> Position {
        Position {
            created_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        }
    }

    fn cursor() -> Seeds {
        let key = CursorKey::from_secret(SECRET);
        let explore = key.encode(Scope::Explore, None, position());
        let mut raw = Vec::new();
        raw.extend_from_slice(&[7u8; 16]);
        raw.extend_from_slice(&1_795_000_000_123_456i64.to_be_bytes());
        raw.extend_from_slice(&[9u8; 16]);
        raw.extend_from_slice(&[1, 3, 200, 17]);
        vec![
            ("explore.txt", explore.clone().into_bytes()),
            (
                "mine-foreign.txt",
                key.encode(Scope::Mine, Some(Uuid::from_u128(5)), position())
                    .into_bytes(),
            ),
            ("cut.txt", explore.as_bytes()[..explore.len() - 2].to_vec()),
            ("padded.txt", format!("{explore}==").into_bytes()),
            ("garbage.txt", b"!!!!not base64!!!!".to_vec()),
            ("position.bin", raw),
            (
                "min-time.bin",
                [&[0u8; 16][..], &i64::MIN.to_be_bytes(), &[0xff; 20]].concat(),
            ),
        ]
    }

    fn tokens() -> Seeds {
        let claims = AccessClaims {
            sub: Uuid::from_u128(1),
            sid: Uuid::from_u128(2),
            tier: "pro".into(),
            iat: 1_700_000_000,
            exp: 1_900_000_000,
        };
        let issued = TokenKey::from_secret(SECRET).issue(&claims);
        let payload = serde_json::to_string(&claims).unwrap();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        let upload = UploadKey::from_secret(SECRET).sign(&UploadClaims {
            ticket: Uuid::from_u128(3),
            user: Uuid::from_u128(4),
            size: 1234,
            mime: Mime::Png,
            sha256: None,
            prefix: "0123456789abcdef".into(),
            exp: 1_900_000_000,
        });
        vec![
            ("access.txt", issued.into_bytes()),
            ("alg-none.txt", none.into_bytes()),
            (
                "signed-header.bin",
                format!("{{\"alg\":\"HS256\",\"typ\":\"JWT\"}}\0{payload}").into_bytes(),
            ),
            (
                "signed-kid.bin",
                format!("{{\"alg\":\"HS256\",\"kid\":\"../x\"}}\0{payload}").into_bytes(),
            ),
            (
                "signed-dup.bin",
                format!("{{\"alg\":\"none\",\"alg\":\"HS256\"}}\0{payload}").into_bytes(),
            ),
            (
                "refresh.txt",
                URL_SAFE_NO_PAD.encode([42u8; 32]).into_bytes(),
            ),
            ("upload.txt", upload.into_bytes()),
        ]
    }

    fn forms() -> Seeds {
        let hash = "ab".repeat(32);
        let seeds: Vec<(&'static str, String)> = vec![
            (
                "submission.bin",
                "  Sunrise over Lisbon rooftops \n\0vibrant\0instagram_square\u{0}2\0violence: behead*\nhate: hate speech\n# comment\0Hate-Speech! and beheading".to_owned(),
            ),
            ("submission-bad.bin", "a\u{7}\0bold \0tiktok\u{0}5\0: nothing\0x".to_owned()),
            ("email.bin", "  Ana.Silva@Example.COM \0correct horse battery\0inter\0".to_owned()),
            ("email-bad.bin", "a@b@c.com\0aaaaaaaaaaaaaaaa\0\0".to_owned()),
            (
                "brand.bin",
                "My kit\0#1d3557, #F80;abc\0 serif \0 0123e456-e89b-12d3-a456-426614174000 ".to_owned(),
            ),
            ("stars.bin", " 5 \0".to_owned()),
            (
                "posted.bin",
                "/api/auth/sign_in\0rate_limited\0email:invalid_email,password:too_short,bad field:x\u{0}5".to_owned(),
            ),
            ("posted-text.bin", "<script>\0internal\0a:b:c,<x>:y\0-1".to_owned()),
            (
                "timestamps.bin",
                "2026-11-22T14:05:03.123456Z\u{0}2016-12-31T23:59:60.5Z\0".to_owned(),
            ),
            ("timestamp-offset.bin", "2026-11-22T14:05:03-00:30\0".to_owned()),
            (
                "media-key.bin",
                format!("0123456789abcdef/{hash}.webp\0fedcba9876543210\0"),
            ),
            ("media-upload.bin", format!("0123456789abcdef/{hash}.svg\0../../etc\0")),
            ("range.bin", "bytes=0-99\0".to_owned()),
            ("range-suffix.bin", "bytes=-500\0".to_owned()),
            ("upload-declared.bin", "../photos/me.JPG\0image/jpg\0".to_owned() + &hash.to_uppercase()),
        ];
        seeds
            .into_iter()
            .map(|(n, s)| (n, s.into_bytes()))
            .collect()
    }
}
