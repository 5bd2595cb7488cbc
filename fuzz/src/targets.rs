//! The bodies of the fuzz targets: one function per target, taking the fuzzer's bytes.
//!
//! Each checks properties the code under test documents, not only that it does not panic (a
//! panic on any input is a finding too). `fuzz/fuzz_targets/<name>.rs` calls one of them
//! under libFuzzer (nightly, `./dev fuzz`), and `server/tests/suite/fuzz_corpus.rs` includes this
//! very file (`#[path]`) to run every seed in `fuzz/corpus/<name>/` and every past finding in
//! `fuzz/regressions/<name>/` through it on stable, so CI replays them all.
//!
//! Inputs that need several strings are split at NUL bytes ([`fields`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::accounts::tokens::{self, AccessClaims, TokenError, TokenKey};
use domain::gallery::Scope;
use domain::gallery::cursor::{CursorError, CursorKey, Position};
use domain::trends::feed::{self, FeedError, FeedFormat, FeedReport};
use domain::uploads::token::{UploadClaims, UploadKey};
use domain::uploads::{Mime, codes, xml};
use domain::uploads::{inspect, metadata, svg, variants};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The bytes the server sniffs an upload from (its `HEAD_BYTES`).
const SNIFF_HEAD: usize = 1024;
/// The secret the token and cursor keys are derived from.
pub const SECRET: &str = "a fuzzing secret of at least thirty-two bytes";

/// Up to `n` strings from `data`, split at NUL bytes (missing ones empty), read as UTF-8 with
/// invalid sequences replaced.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// Up to `N` bytes from `data` at `at`, zero-padded.
fn bytes_at<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    for (i, slot) in b.iter_mut().enumerate() {
        *slot = data.get(at + i).copied().unwrap_or(0);
    }
    b
}

// ---------------------------------------------------------------------------------------------
// sniff: `Mime::sniff` and the lexical XML pass it shares with the SVG parser.

/// Whether `name` (a qualified name from [`xml::root_element`]) is what the sniffer calls SVG.
fn is_svg_name(name: &[u8]) -> bool {
    name == b"svg" || (name.len() > 4 && name.ends_with(b":svg"))
}

/// `text` with every occurrence of `pat` broken up, so it can sit inside a construct `pat`
/// would close.
fn defuse(text: &[u8], pat: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(pat) {
            // `-->` becomes `-- >`, `"` a space.
            out.extend_from_slice(&pat[..pat.len() - 1]);
            out.push(b' ');
            i += pat.len().saturating_sub(1).max(1);
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// The type sniffer: it names a type only from magic numbers or an `svg` root element; a cut
/// head never says something the whole file contradicts; an `<svg` hidden in a comment, PI or
/// DOCTYPE is never the root; and on well-formed XML the lexical pass and a real parser agree
/// on the root element and the document's shape.
pub fn sniff(data: &[u8]) {
    let mime = Mime::sniff(data);
    if let Some(m) = mime {
        assert_eq!(
            Mime::parse(m.as_str()),
            Some(m),
            "{m:?} does not round-trip"
        );
    }
    let magic = data.starts_with(b"\x89PNG\r\n\x1a\n")
        || data.starts_with(&[0xff, 0xd8, 0xff])
        || (data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP");
    let root = xml::root_element(data);
    match mime {
        Some(Mime::Svg) => {
            assert!(!magic);
            assert!(root.is_some_and(is_svg_name), "SVG without an svg root");
        }
        Some(_) => assert!(magic, "a raster type without its magic number"),
        None => assert!(!magic && !root.is_some_and(is_svg_name)),
    }
    // A head says nothing the whole file contradicts (the server sniffs the first 1 KiB).
    for cut in [data.len() / 2, SNIFF_HEAD.min(data.len())] {
        if let Some(m) = Mime::sniff(&data[..cut]) {
            assert_eq!(
                mime,
                Some(m),
                "the first {cut} bytes say {m:?}, the whole {mime:?}"
            );
        }
    }
    // Whatever `data` holds, inside a comment, a PI or a DOCTYPE it is no root element.
    let hidden: [Vec<u8>; 4] = [
        [&b"<!--"[..], &defuse(data, b"-->"), b"--><html>"].concat(),
        [&b"<?pi "[..], &defuse(data, b"?>"), b"?><html>"].concat(),
        [
            &b"<!DOCTYPE html [<!-- "[..],
            &defuse(data, b"-->"),
            b" -->]><html>",
        ]
        .concat(),
        [
            &b"<!DOCTYPE html SYSTEM \""[..],
            &defuse(data, b"\""),
            b"\"><html>",
        ]
        .concat(),
    ];
    for doc in &hidden {
        assert_eq!(
            xml::root_element(doc),
            Some(&b"html"[..]),
            "{}",
            String::from_utf8_lossy(doc)
        );
        assert_eq!(Mime::sniff(doc), None);
    }
    // On well-formed XML (DTDs allowed, so the parser reads everything the prolog can hold),
    // the sniffer's root is the parser's.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: 10_000,
        ..roxmltree::ParsingOptions::default()
    };
    if let Ok(doc) = roxmltree::Document::parse_with_options(text, options) {
        let parsed = doc.root_element();
        assert_eq!(
            root.map(is_svg_name),
            Some(parsed.tag_name().name() == "svg"),
            "the sniffer read root {:?}, the parser <{}>",
            root.map(String::from_utf8_lossy),
            parsed.tag_name().name()
        );
        let limits = xml::Limits {
            elements: u32::MAX,
            depth: u32::MAX,
            attributes_per_element: u32::MAX,
            attributes: u32::MAX,
        };
        // Without a DTD (what the sanitiser parses) the shapes must match exactly.
        if !text.contains("<!DOCTYPE") {
            let shape = xml::scan(data, &limits).expect("well-formed XML scans");
            let elements = doc.descendants().filter(|n| n.is_element()).count();
            let depth = doc
                .descendants()
                .filter(|n| n.is_element())
                .map(|n| n.ancestors().filter(|a| a.is_element()).count())
                .max()
                .unwrap_or(0);
            let attributes: usize = doc
                .descendants()
                .filter(|n| n.is_element())
                .map(|n| n.attributes().len())
                .sum();
            assert_eq!(shape.elements as usize, elements, "element count");
            assert_eq!(shape.depth as usize, depth, "depth");
            assert!(
                shape.attributes as usize >= attributes,
                "the scan counted {} attributes, the parser {attributes}",
                shape.attributes
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// svg: the sanitiser, its CSS reader and the upload check.

const SVG_NS: &str = "http://www.w3.org/2000/svg";

/// The SVG sanitiser: its output is its own sanitisation (idempotent), parses with an `svg`
/// root, holds no comment, PI, DOCTYPE, event handler, `javascript:` URL, external reference
/// or CSS problem, and is never refused by the upload check as unsafe; the upload check
/// accepts a file only if sanitising dropped nothing, and stores exactly the sanitised text.
pub fn svg(data: &[u8]) {
    let _ = svg::css_problem(&String::from_utf8_lossy(data));
    let checked = svg::check(data);
    let Ok(text) = std::str::from_utf8(data) else {
        let code = &checked.expect_err("non-UTF-8 accepted").fields[0].code;
        assert_eq!(code, codes::SVG_INVALID);
        return;
    };
    let sanitized = match svg::sanitize(text) {
        Ok(s) => s,
        Err(refusal) => {
            if refusal == svg::Refusal::Declarations {
                assert!(text.contains("<!"), "declarations refused without any `<!`");
            }
            assert!(checked.is_err(), "check accepted what sanitize refused");
            return;
        }
    };
    let out = &sanitized.svg;
    assert!(
        !out.contains("<!") && !out.contains("<?"),
        "markup declarations, comments or PIs survived: {out}"
    );
    let again = svg::sanitize(out).unwrap_or_else(|r| panic!("output refused ({r}): {out}"));
    assert_eq!(&again.svg, out, "sanitising is not idempotent");
    assert!(
        again.removed.is_empty(),
        "output still unsafe: {:?}",
        again.removed
    );
    let doc = roxmltree::Document::parse(out).expect("the output parses");
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(SVG_NS));
    assert_eq!(root.tag_name().name(), "svg");
    for n in doc.descendants().filter(|n| n.is_element()) {
        assert_eq!(
            n.tag_name().namespace(),
            Some(SVG_NS),
            "foreign element kept"
        );
        for a in n.attributes() {
            let name = a.name().to_ascii_lowercase();
            let value: String = a
                .value()
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .flat_map(char::to_lowercase)
                .collect();
            assert!(!name.starts_with("on"), "event handler kept: {}", a.name());
            assert!(!value.contains("javascript:"), "javascript: kept");
            if a.name() == "href" {
                assert!(value.starts_with('#'), "external href kept: {}", a.value());
            } else {
                assert_eq!(
                    svg::css_problem(a.value()),
                    None,
                    "CSS problem kept in {name}"
                );
            }
        }
        if n.tag_name().name() == "style" {
            for t in n.children().filter(|c| c.is_text()) {
                let css = t.text().unwrap_or("");
                assert_eq!(svg::css_problem(css), None, "CSS problem kept: {css}");
                assert!(!css.to_ascii_lowercase().contains("@import"));
            }
        }
    }
    match svg::check(out.as_bytes()) {
        Ok(c) => assert_eq!(&c.svg, out),
        Err(e) => assert_ne!(e.fields[0].code, codes::SVG_UNSAFE, "{}", e.message),
    }
    match checked {
        Ok(c) => {
            assert!(sanitized.removed.is_empty());
            assert_eq!(&c.svg, out, "check stores other text than sanitize makes");
        }
        Err(e) if e.fields[0].code == codes::SVG_UNSAFE => {
            assert!(
                !sanitized.removed.is_empty(),
                "unsafe, but nothing was dropped"
            );
        }
        Err(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// inspect: raster uploads, their metadata stripping and their decode for variants.

/// Raster inspection: a file it passes has a size within the limits, loses its metadata
/// without losing its validity (the stripped file passes inspection with the same size and
/// strips to itself), and decodes for the variants job to pixels of that size (turned by its
/// orientation).
pub fn inspect(data: &[u8]) {
    let Some(mime) = Mime::sniff(data) else {
        return;
    };
    if mime == Mime::Svg {
        return;
    }
    let Ok(found) = inspect::inspect_bytes(data, mime) else {
        return;
    };
    assert!(found.sanitized.is_none());
    inspect::check_size(found.width, found.height)
        .expect("inspection passed a size over the limits");
    let stripped = metadata::strip(mime, data).expect("inspection passed a file strip cannot read");
    let again = inspect::inspect_bytes(&stripped, mime)
        .unwrap_or_else(|e| panic!("the stripped file fails inspection: {}", e.message));
    assert_eq!((again.width, again.height), (found.width, found.height));
    assert_eq!(
        metadata::strip(mime, &stripped).expect("stripped file strips"),
        stripped,
        "stripping is not idempotent"
    );
    let pixels = variants::decode(&stripped, mime)
        .unwrap_or_else(|e| panic!("an inspected file does not decode: {e}"));
    let mut got = [pixels.width, pixels.height];
    let mut want = [found.width, found.height];
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "decoded to another size");
    assert_eq!(
        pixels.pixels.len() as u64,
        u64::from(pixels.width) * u64::from(pixels.height) * 4
    );
}

// ---------------------------------------------------------------------------------------------
// feed_csv, feed_json: trend feeds.

fn feed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

/// What every report must hold: rows normalised as stored, errors on lines of the file in
/// order, within the row limit.
fn check_report(body: &str, report: &FeedReport) {
    use domain::trends::rank::{normalise_hashtag, normalise_topic};
    assert!(report.rows.len() + report.errors.len() <= feed::MAX_ROWS);
    for row in &report.rows {
        assert_eq!(
            normalise_topic(&row.topic).as_ref(),
            Some(&row.topic),
            "{row:?}"
        );
        assert_eq!(
            normalise_hashtag(&row.hashtag).as_ref(),
            Some(&row.hashtag),
            "{row:?}"
        );
        assert!(
            (1..=40).contains(&row.source.chars().count())
                && row.source.chars().all(|c| c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '-' | '_' | '.'))
                && row.source != domain::trends::COMPUTED_SOURCE,
            "{row:?}"
        );
        assert!(
            row.score.is_finite() && row.score >= 0.0 && row.score.is_sign_positive(),
            "{row:?}"
        );
        assert!(
            row.observed_at <= feed_now() + TimeDelta::minutes(5),
            "{row:?}"
        );
    }
    let last_line = 1 + body
        .bytes()
        .enumerate()
        .filter(|&(i, b)| b == b'\n' || (b == b'\r' && body.as_bytes().get(i + 1) != Some(&b'\n')))
        .count();
    let mut previous = 0;
    for e in &report.errors {
        assert!(
            (1..=last_line).contains(&e.line),
            "line {} of {last_line}",
            e.line
        );
        assert!(e.line >= previous, "errors out of file order");
        previous = e.line;
        assert!(!e.message.is_empty());
        assert!(
            e.message.chars().count() <= 1_000,
            "a {}-character error message",
            e.message.chars().count()
        );
    }
}

/// CSV feeds: any input either fails whole with a reason or gives a report whose rows are
/// valid as stored and whose errors point at lines of the file.
pub fn feed_csv(data: &[u8]) {
    let body = String::from_utf8_lossy(data);
    let _ = FeedFormat::detect(Some("feed.csv"), Some("text/csv"), &body);
    if let Ok(report) = feed::parse(&body, FeedFormat::Csv, feed_now()) {
        check_report(&body, &report);
    }
}

/// JSON feeds: as for CSV; besides, a feed made of more elements than the row limit (the
/// input's elements repeated) is refused whole.
pub fn feed_json(data: &[u8]) {
    let body = String::from_utf8_lossy(data);
    let format = FeedFormat::detect(None, None, &body);
    let Ok(report) = feed::parse(&body, FeedFormat::Json, feed_now()) else {
        return;
    };
    check_report(&body, &report);
    assert_eq!(format, FeedFormat::Json, "a JSON array detected as CSV");
    // The row limit, on a fraction of the inputs and only when a few hundred copies reach
    // it: building and reading tens of thousands of rows per input took over 10 s in the
    // unoptimised sanitizer build (the limit itself is unit-tested in `feed`).
    let n = report.rows.len() + report.errors.len();
    let trimmed = body.trim_start_matches('\u{feff}').trim();
    let inner = &trimmed[1..trimmed.len() - 1];
    let copies = feed::MAX_ROWS / n.max(1) + 1;
    if n > 0 && copies <= 500 && data.len().is_multiple_of(16) && inner.len() * copies <= 4_000_000
    {
        let big = format!("[{}]", vec![inner; copies].join(","));
        assert_eq!(
            feed::parse(&big, FeedFormat::Json, feed_now()),
            Err(FeedError::TooManyRows),
            "{} rows accepted",
            n * copies
        );
    }
}

// ---------------------------------------------------------------------------------------------
// cursor: gallery cursors.

const SCOPES: [Scope; 2] = [Scope::Mine, Scope::Explore];

/// Gallery cursors: what decodes is exactly what was issued for that scope and viewer;
/// a cursor made from the input decodes to its position in its own context only, and any
/// edit to it is refused.
pub fn cursor(data: &[u8]) {
    let key = CursorKey::from_secret(SECRET);
    let viewer = Uuid::from_bytes(bytes_at::<16>(data, 0));
    let text = String::from_utf8_lossy(data);
    for scope in SCOPES {
        for v in [None, Some(viewer)] {
            if let Ok(p) = key.decode(scope, v, &text) {
                assert_eq!(
                    key.encode(scope, v, p),
                    text,
                    "a cursor we never issued decodes"
                );
            }
        }
    }
    let micros = i64::from_be_bytes(bytes_at::<8>(data, 16));
    let Some(created_at) = DateTime::from_timestamp_micros(micros) else {
        return;
    };
    let position = Position {
        created_at,
        id: Uuid::from_bytes(bytes_at::<16>(data, 24)),
    };
    let scope = SCOPES[usize::from(data.get(40).copied().unwrap_or(0) & 1)];
    let own = (scope == Scope::Mine).then_some(viewer);
    let c = key.encode(scope, own, position);
    assert_eq!(key.decode(scope, own, &c), Ok(position));
    for other_scope in SCOPES {
        for v in [
            None,
            Some(viewer),
            Some(Uuid::from_u128(viewer.as_u128() ^ 1)),
        ] {
            // No viewer is signed as the nil id, which no account has.
            if (other_scope, v.unwrap_or_default()) != (scope, own.unwrap_or_default()) {
                assert_eq!(key.decode(other_scope, v, &c), Err(CursorError::Forged));
            }
        }
    }
    assert_eq!(
        CursorKey::from_secret("another secret").decode(scope, own, &c),
        Err(CursorError::Forged)
    );
    // One character changed, cut or added: refused.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut edited = c.clone().into_bytes();
    let at = usize::from(data.get(41).copied().unwrap_or(0)) % edited.len();
    edited[at] = ALPHABET[usize::from(data.get(42).copied().unwrap_or(0)) % ALPHABET.len()];
    let edited = String::from_utf8(edited).expect("base64 is ASCII");
    if edited != c {
        assert!(
            key.decode(scope, own, &edited).is_err(),
            "{c} edited to {edited}"
        );
    }
    let extra = char::from(ALPHABET[usize::from(data.get(43).copied().unwrap_or(0)) % 64]);
    for bad in [&c[..c.len() - 1], &format!("{c}{extra}"), &c[1..]] {
        assert!(key.decode(scope, own, bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// tokens: access tokens, refresh tokens and upload tokens.

fn claims_from(data: &[u8]) -> AccessClaims {
    let f = fields(data.get(48..).unwrap_or(&[]), 2);
    AccessClaims {
        sub: Uuid::from_bytes(bytes_at::<16>(data, 0)),
        sid: Uuid::from_bytes(bytes_at::<16>(data, 16)),
        tier: f[0].clone(),
        iat: i64::from_be_bytes(bytes_at::<8>(data, 32)),
        exp: i64::from_be_bytes(bytes_at::<8>(data, 40)),
    }
}

/// The access-token key as `TokenKey::from_secret` derives it, so the target can sign
/// headers and payloads of its own choosing: what an attacker holding the key could not do
/// either, which tests the checks behind the signature.
fn access_key_bytes() -> Vec<u8> {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(b"socialcraft access tokens v1");
    m.finalize().into_bytes().to_vec()
}

/// Tokens: an access token verifies only as issued (shape, `HS256`, our signature, not
/// expired), even when its header and payload are signed with our key; issued tokens round
/// trip until they expire and refuse any edit; a refresh token hashes only in its one shape;
/// upload tokens likewise verify only as signed.
pub fn tokens(data: &[u8]) {
    let key = TokenKey::from_secret(SECRET);
    let text = String::from_utf8_lossy(data);
    let now = 1_800_000_000;
    if let Ok(c) = key.verify(&text, now) {
        assert_eq!(key.issue(&c), text, "a token we never issued verifies");
    }
    // Header and payload of the input's choosing, signed with our key.
    let f = fields(data, 2);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&f[0]),
        URL_SAFE_NO_PAD.encode(&f[1])
    );
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&access_key_bytes()).unwrap();
    m.update(signing_input.as_bytes());
    let forged = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    );
    if let Ok(c) = key.verify(&forged, now) {
        let header: serde_json::Value = serde_json::from_str(&f[0]).expect("header is JSON");
        let header = header.as_object().expect("header is an object");
        assert_eq!(header.get("alg"), Some(&serde_json::json!("HS256")));
        assert!(
            header.keys().all(|k| k == "alg" || k == "typ"),
            "{header:?}"
        );
        assert!(
            matches!(header.get("typ"), None | Some(serde_json::Value::Null))
                || header.get("typ") == Some(&serde_json::json!("JWT"))
        );
        assert!(c.exp > now);
    }
    // Issued from the input: verifies until it expires, and not once edited.
    let claims = claims_from(data);
    let t = key.issue(&claims);
    if let Some(before) = claims.exp.checked_sub(1)
        && t.len() <= 2048
    {
        assert_eq!(key.verify(&t, before), Ok(claims.clone()));
    }
    assert!(
        key.verify(&t, claims.exp).is_err(),
        "verifies at its expiry"
    );
    let mut edited = t.clone().into_bytes();
    let at = usize::from(data.get(47).copied().unwrap_or(0)) * 7 % edited.len();
    edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).expect("a token is ASCII");
    assert!(key.verify(&edited, now).is_err(), "{t} edited to {edited}");
    if t.len() <= 2048 {
        assert_eq!(
            TokenKey::from_secret("another secret").verify(&t, now),
            Err(TokenError::Signature)
        );
    }

    // Refresh tokens: 43 base64url characters, canonical, hashed with SHA-256.
    for candidate in [
        text.as_ref(),
        f[0].as_str(),
        &URL_SAFE_NO_PAD.encode(bytes_at::<32>(data, 0)),
    ] {
        if let Some(hash) = tokens::hash_refresh_token(candidate) {
            let raw = URL_SAFE_NO_PAD
                .decode(candidate)
                .expect("hashed a non-base64 token");
            assert_eq!(raw.len(), 32);
            assert_eq!(
                URL_SAFE_NO_PAD.encode(&raw),
                candidate,
                "non-canonical token hashed"
            );
            assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(candidate.as_bytes())));
        }
    }
    assert!(tokens::hash_refresh_token(&URL_SAFE_NO_PAD.encode(bytes_at::<32>(data, 0))).is_some());

    // Upload tokens.
    let upload = UploadKey::from_secret(SECRET);
    if let Ok(c) = upload.verify(&text, now) {
        assert_eq!(
            upload.sign(&c),
            text,
            "an upload token we never signed verifies"
        );
    }
    let mime = Mime::ALL[usize::from(data.get(46).copied().unwrap_or(0)) % 4];
    let upload_claims = UploadClaims {
        ticket: claims.sub,
        user: claims.sid,
        size: claims.iat as u64,
        mime,
        sha256: (!f[1].is_empty()).then(|| f[1].clone()),
        prefix: claims.tier.clone(),
        exp: claims.exp,
    };
    let signed = upload.sign(&upload_claims);
    if let Some(before) = upload_claims.exp.checked_sub(1)
        && signed.len() <= 1024
    {
        assert_eq!(upload.verify(&signed, before), Ok(upload_claims.clone()));
    }
    assert!(upload.verify(&signed, upload_claims.exp).is_err());
    let mut edited = signed.clone().into_bytes();
    let at = usize::from(data.get(45).copied().unwrap_or(0)) * 5 % edited.len();
    edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).expect("a token is ASCII");
    assert!(
        upload.verify(&edited, now).is_err(),
        "{signed} edited to {edited}"
    );
}

// ---------------------------------------------------------------------------------------------
// forms: validation of what forms and addresses carry.

/// Characters our own sentences are made of: a sentence with any other came from the input.
fn our_sentence(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || " .,;:'\"!?()#-/@".contains(c)
            || "\u{2018}\u{2019}\u{201c}\u{201d}\u{2026}\u{2013}\u{2014}".contains(c)
    })
}

/// Form validation and the small parsers of addresses and settings: what a validator
/// accepts is within its documented rules and normalised (validating it again gives the
/// same), and what it documents refusing it refuses.
pub fn forms(data: &[u8]) {
    let f = fields(data, 6);
    let (a, b, c, d) = (&f[0], &f[1], &f[2], &f[3]);

    // Submissions.
    use domain::create::formats::Format;
    use domain::create::validation::{self as create, Style};
    match create::validate_submission(a, b, c, d) {
        Ok(s) => {
            assert_eq!(s.prompt, a.trim());
            let chars = s.prompt.chars().count();
            assert!((create::PROMPT_MIN_CHARS..=create::PROMPT_MAX_CHARS).contains(&chars));
            assert!(!s.prompt.chars().any(char::is_control));
            assert_eq!(Style::from_slug(b), Some(s.style));
            assert_eq!(Format::from_slug(c), Some(s.format));
            assert!((create::VARIATIONS_MIN..=create::VARIATIONS_MAX).contains(&s.variations));
            let again = create::validate_submission(
                &s.prompt,
                s.style.slug(),
                s.format.slug(),
                &s.variations.to_string(),
            );
            assert_eq!(again, Ok(s));
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            let mut seen: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            seen.dedup();
            assert_eq!(seen.len(), errors.len(), "a field reported twice");
            for e in &errors {
                assert!(["prompt", "style", "format", "variations"].contains(&e.field.as_str()));
            }
        }
    }

    // Accounts.
    use domain::accounts::validation as accounts;
    if let Ok(email) = accounts::validate_email(a) {
        assert_eq!(email, email.trim());
        assert_eq!(email, email.to_lowercase());
        assert!(email.chars().count() <= accounts::EMAIL_MAX_CHARS);
        assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control()));
        let (local, domain) = email.split_once('@').expect("an @");
        assert!(!local.is_empty() && !domain.contains('@'));
        assert!(domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
        assert_eq!(
            accounts::validate_email(&email),
            Ok(email.clone()),
            "not idempotent"
        );
    }
    if accounts::validate_new_password(b, a).is_ok() {
        let chars = b.chars().count();
        assert!((accounts::PASSWORD_MIN_CHARS..=accounts::PASSWORD_MAX_CHARS).contains(&chars));
        let mut distinct: Vec<char> = b.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= 4);
        assert!(!b.trim().eq_ignore_ascii_case(a.trim()));
    }
    assert!(
        accounts::validate_new_password(a, a).is_err(),
        "the email as its own password"
    );

    // Brand kits.
    use domain::brands::{self, Font};
    if let Ok(colors) = brands::parse_colors(b) {
        assert!((1..=brands::MAX_COLORS).contains(&colors.len()));
        for c in &colors {
            assert!(
                c.len() == 7
                    && c.starts_with('#')
                    && c[1..]
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{c}"
            );
        }
        assert_eq!(brands::parse_colors(&colors.join(", ")), Ok(colors.clone()));
    }
    match brands::validate_brand(a, b, c, Some(d)) {
        Ok(kit) => {
            assert_eq!(kit.name, a.trim());
            assert!(!kit.name.is_empty());
            assert!(kit.name.chars().count() <= brands::MAX_NAME_CHARS);
            assert_eq!(brands::parse_colors(b), Ok(kit.colors.clone()));
            assert_eq!(Font::from_slug(c.trim()), Some(kit.font));
            assert_eq!(kit.logo, Uuid::parse_str(d.trim()).ok());
        }
        Err(errors) => assert!(!errors.is_empty()),
    }

    // Ratings.
    match domain::gallery::parse_stars(a) {
        Ok(None) => assert_eq!(a.trim().parse::<u8>(), Ok(0)),
        Ok(Some(n)) => {
            assert!((1..=5).contains(&n));
            assert_eq!(a.trim().parse::<u8>(), Ok(n));
        }
        Err(_) => assert!(!matches!(a.trim().parse::<u8>(), Ok(0..=5))),
    }

    // Outcomes of forms posted without JavaScript: codes only, our own sentences.
    use app::posted::{self, Posted};
    if let Some(code) = posted::parse_code(a) {
        assert_eq!(code.as_str(), a);
    }
    let query = |name: &str| match name {
        posted::FORM => Some(f[0].clone()),
        posted::ERROR => Some(f[1].clone()),
        posted::FIELDS => Some(f[2].clone()),
        posted::WAIT => Some(f[3].clone()),
        _ => None,
    };
    let outcome = Posted::from_query(query).expect("an outcome with a form");
    let shown = outcome.error();
    assert!(our_sentence(&shown.message), "shown: {}", shown.message);
    for field in &shown.fields {
        assert!(our_sentence(&field.message), "shown: {}", field.message);
    }
    if outcome.code.is_some() {
        let pairs = outcome.pairs();
        let back = Posted::from_query(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        });
        assert_eq!(back, Some(outcome.clone()), "pairs do not read back");
    }

    // Timestamps as the browser reads them: never other than chrono reads them.
    for text in [a.as_str(), b.as_str()] {
        if let Some(t) = shared::timestamp::parse(text) {
            let chrono = DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc));
            assert_eq!(chrono, Ok(t), "{text}");
        }
    }
    let micros = i64::from_be_bytes(bytes_at::<8>(data, 0));
    if let Some(t) = DateTime::from_timestamp_micros(micros) {
        let written = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        if (0..=9999).contains(&chrono::Datelike::year(&t)) {
            assert_eq!(shared::timestamp::parse(&written), Some(t), "{written}");
        }
    }

    // Media keys.
    use domain::media;
    for key in [a.as_str(), &format!("{}{a}", media::UPLOADS_PREFIX)] {
        if let Some(parts) = media::parse_key(key) {
            let (folder, rest) = match key.strip_prefix(media::UPLOADS_PREFIX) {
                Some(rest) => (media::UPLOADS_PREFIX, rest),
                None => ("", key),
            };
            assert_eq!(folder.is_empty(), !parts.original);
            let (prefix, file) = rest.split_once('/').expect("a folder");
            assert_eq!(
                file,
                format!("{}.{}", parts.sha256, parts.kind.ext()),
                "{key}"
            );
            assert!(prefix.len() == 16 && !key.contains(".."), "{key}");
            if let Some(rotated) = media::rotate_key(key, b) {
                let moved = media::parse_key(&rotated).expect("a rotated key parses");
                assert_eq!(moved, parts);
                assert_eq!(rotated, format!("{folder}{b}/{file}"));
            }
        }
    }

    // Range headers.
    let size = u64::from(u16::from_be_bytes(bytes_at::<2>(data, 0)));
    if let media::RangeAnswer::Part(r) = media::resolve_range(a, size) {
        assert!(r.start < r.end && r.end <= size, "{a}: {r:?} of {size}");
    }

    // Upload declarations.
    let size = u64::from(u32::from_be_bytes(bytes_at::<4>(data, 0)));
    if let Ok(declared) = domain::uploads::check_declared(a, size, b, Some(c), 10_000_000) {
        assert!(declared.size > 0 && declared.size <= 10_000_000);
        assert_eq!(Mime::parse(b), Some(declared.mime));
        assert!(!declared.filename.is_empty());
        assert!(!declared.filename.contains(['/', '\\']));
        assert!(!declared.filename.chars().any(char::is_control));
        if let Some(h) = &declared.sha256 {
            assert!(
                h.len() == 64
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
    }

    // The moderation blocklist: every rule blocks its own phrase.
    use domain::create::moderation::Blocklist;
    let list = Blocklist::parse(&f[4], "fuzz");
    if let Ok(list) = &list {
        let _ = list.check(&f[5]);
    }
    // A list parses when each of its lines does.
    assert_eq!(
        list.is_ok(),
        f[4].lines().all(|l| Blocklist::parse(l, "fuzz").is_ok()),
        "a list and its lines disagree"
    );
    for line in f[4].lines() {
        let Ok(rule) = Blocklist::parse(line, "fuzz") else {
            continue;
        };
        if rule.is_empty() {
            continue;
        }
        let phrase = line.split_once(':').map_or(line, |(_, p)| p).trim();
        let prompt = format!("well, {}!", phrase.replace('*', ""));
        assert!(
            rule.check(&prompt).is_err(),
            "{line:?} does not block {prompt:?}"
        );
    }
}
