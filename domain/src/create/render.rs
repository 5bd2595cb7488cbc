//! The built-in renderer: a finished social graphic from a prompt, a style, a platform format
//! and a seed, with no network and no key.
//!
//! It composes an SVG (background, decoration, the prompt as a headline fitted to the
//! format's safe area) and rasterises it with resvg. Fonts ship with the project (Inter, OFL)
//! and system fonts are never consulted, so the same inputs and seed give the same bytes on
//! every machine.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use crate::create::{Format, Rect, Style};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

use crate::splitmix::SplitMix64;

const FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/Inter-Bold.otf");
const FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/Inter-Regular.otf");
// The other brand-kit fonts (DejaVu, free licence in `assets/fonts/LICENSE-DejaVu.txt`).
const FONT_SERIF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSerif-Bold.ttf");
const FONT_MONO: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono-Bold.ttf");

/// A brand kit's look: it replaces the style's palette and the headline font.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandLook {
    /// One to six `#rrggbb` colours, most important first.
    pub colors: Vec<String>,
    /// The headline font.
    pub font: crate::brands::Font,
}

/// What to draw.
#[derive(Debug, Clone, Copy)]
pub struct RenderRequest<'a> {
    /// The brand kit's colours and font, if one was chosen.
    pub brand: Option<&'a BrandLook>,
    /// The headline: the creator's prompt.
    pub prompt: &'a str,
    /// The visual style.
    pub style: Style,
    /// The platform format, which fixes the pixel size.
    pub format: Format,
    /// Varies the composition between variations of one submission.
    pub seed: u64,
}

/// Why rendering failed. Every case is a bug in the renderer, not bad input: any prompt that
/// passed validation renders.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The composed SVG did not parse.
    #[error("the composed image did not parse: {0}")]
    Svg(String),
    /// The pixel buffer could not be made or encoded.
    #[error("could not rasterise: {0}")]
    Raster(String),
}

/// The headline laid out in the safe area.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    /// Font size in pixels.
    pub font_size: f32,
    /// Distance between baselines.
    pub line_height: f32,
    /// The lines, in order.
    pub lines: Vec<String>,
    /// Each line's measured width.
    pub widths: Vec<f32>,
}

impl Headline {
    /// The height the lines take.
    pub fn height(&self) -> f32 {
        self.line_height * self.lines.len() as f32
    }
}

struct Palette<'a> {
    stops: [&'a str; 3],
    text: &'a str,
    accent: &'a str,
    uppercase: bool,
}

fn palette(style: Style) -> Palette<'static> {
    match style {
        Style::Bold => Palette {
            stops: ["#111111", "#1d1d1d", "#2b2b2b"],
            text: "#ffffff",
            accent: "#ffd400",
            uppercase: true,
        },
        Style::Minimal => Palette {
            stops: ["#f7f7f5", "#f1f0ec", "#e9e7e1"],
            text: "#1b1b1b",
            accent: "#1b1b1b",
            uppercase: false,
        },
        Style::Vibrant => Palette {
            stops: ["#ff3c78", "#ff8a00", "#7b2ff7"],
            text: "#ffffff",
            accent: "#fff35c",
            uppercase: false,
        },
        Style::Pastel => Palette {
            stops: ["#fde2e4", "#e2ece9", "#cddafd"],
            text: "#3a3350",
            accent: "#f4a6b8",
            uppercase: false,
        },
        Style::Neon => Palette {
            stops: ["#05010f", "#0b0425", "#12083a"],
            text: "#f5f3ff",
            accent: "#00f0ff",
            uppercase: true,
        },
        Style::Retro => Palette {
            stops: ["#f4e1c1", "#f2c38f", "#e8875a"],
            text: "#3b1f0e",
            accent: "#d1495b",
            uppercase: true,
        },
        Style::Editorial => Palette {
            stops: ["#efe6d2", "#e6d8bb", "#dcc9a3"],
            text: "#161310",
            accent: "#b3261e",
            uppercase: false,
        },
        Style::Playful => Palette {
            stops: ["#4cc9f0", "#4895ef", "#560bad"],
            text: "#ffffff",
            accent: "#ffbe0b",
            uppercase: false,
        },
    }
}

/// The picture's generator: SplitMix64 seeded from the variation's seed, style and format,
/// so the same request always draws the same picture.
fn seeded(seed: u64, style: Style, format: Format) -> SplitMix64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in style.slug().bytes().chain(format.slug().bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3);
    }
    SplitMix64(h)
}

/// Measures text with the bundled bold face. Characters the face lacks count as 0.6 em, so
/// the layout never underestimates what a fallback glyph could need.
struct Measurer {
    font: skrifa::FontRef<'static>,
}

impl Measurer {
    fn get(font: crate::brands::Font) -> Option<&'static Measurer> {
        static M: OnceLock<[Option<Measurer>; 3]> = OnceLock::new();
        let all = M.get_or_init(|| {
            [FONT_BOLD, FONT_SERIF, FONT_MONO].map(|bytes| {
                skrifa::FontRef::new(bytes)
                    .ok()
                    .map(|font| Measurer { font })
            })
        });
        let i = match font {
            crate::brands::Font::Inter => 0,
            crate::brands::Font::Serif => 1,
            crate::brands::Font::Mono => 2,
        };
        all[i].as_ref()
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        let charmap = self.font.charmap();
        let metrics = self
            .font
            .glyph_metrics(Size::new(size), LocationRef::default());
        text.chars()
            .map(|c| {
                charmap
                    .map(c)
                    .and_then(|g| metrics.advance_width(g))
                    .unwrap_or(size * 0.6)
            })
            .sum()
    }
}

fn width_of(font: crate::brands::Font, text: &str, size: f32) -> f32 {
    match Measurer::get(font) {
        Some(m) => m.width(text, size),
        // Unreachable with the bundled font; a generous estimate keeps text inside anyway.
        None => text.chars().count() as f32 * size * 0.7,
    }
}

/// Greedy word wrap at `size`; words wider than the line are broken between characters.
fn wrap(font: crate::brands::Font, text: &str, size: f32, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if width_of(font, &candidate, size) <= max_width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if width_of(font, word, size) <= max_width {
            line = word.to_owned();
        } else {
            for c in word.chars() {
                let mut next = line.clone();
                next.push(c);
                if width_of(font, &next, size) > max_width && !line.is_empty() {
                    lines.push(std::mem::replace(&mut line, c.to_string()));
                } else {
                    line = next;
                }
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Fits `text` into `area`: the largest size (down to a floor) at which the wrapped lines fit
/// both ways; at the floor, lines that do not fit are cut and the last ends with "…".
pub fn layout_headline(text: &str, area: Rect) -> Headline {
    layout_headline_in(crate::brands::Font::Inter, text, area)
}

/// [`layout_headline`] measured with `font`.
pub fn layout_headline_in(font: crate::brands::Font, text: &str, area: Rect) -> Headline {
    let max_size = (area.h * 0.3).min(area.w * 0.16);
    let min_size = (area.w * 0.035).max(18.0);
    let mut size = max_size;
    loop {
        let line_height = size * 1.18;
        let lines = wrap(font, text, size, area.w);
        let fits = lines.len() as f32 * line_height <= area.h;
        if fits || size <= min_size {
            let max_lines = ((area.h / line_height).floor() as usize).max(1);
            let mut lines = lines;
            if lines.len() > max_lines {
                lines.truncate(max_lines);
                if let Some(last) = lines.last_mut() {
                    while !last.is_empty() && width_of(font, &format!("{last}…"), size) > area.w {
                        last.pop();
                    }
                    last.push('…');
                }
            }
            let widths = lines.iter().map(|l| width_of(font, l, size)).collect();
            return Headline {
                font_size: size,
                line_height,
                lines,
                widths,
            };
        }
        size = (size * 0.93).max(min_size);
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The area the headline gets: the safe area less a band at the bottom for the style label.
fn headline_area(format: Format) -> Rect {
    let safe = format.safe_area();
    let band = (safe.h * 0.14).min(120.0);
    Rect {
        h: safe.h - band,
        ..safe
    }
}

/// The style's palette in a brand's colours: the background gradient from the first colours,
/// the accent from the last, and black or white text, whichever reads better on the
/// background.
fn brand_palette<'a>(style: &Palette<'static>, brand: &'a BrandLook) -> Palette<'a> {
    let c = |i: usize| -> &'a str {
        brand
            .colors
            .get(i)
            .or(brand.colors.last())
            .map_or("#000000", String::as_str)
    };
    let n = brand.colors.len().max(1);
    let stops = [c(0), c(1.min(n - 1)), c(2.min(n - 1))];
    let accent = if n > 1 { c(n - 1) } else { style.accent };
    let text = if luminance(stops[0]) * 0.5 + luminance(stops[1]) * 0.5 > 0.45 {
        "#111111"
    } else {
        "#ffffff"
    };
    Palette {
        stops,
        text,
        accent,
        uppercase: style.uppercase,
    }
}

/// Relative luminance (0 black to 1 white) of `#rrggbb`.
fn luminance(hex: &str) -> f32 {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    let lin = |c: u32| {
        let c = c as f32 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin((v >> 16) & 0xff) + 0.7152 * lin((v >> 8) & 0xff) + 0.0722 * lin(v & 0xff)
}

/// Composes the SVG document for `req`.
pub fn compose_svg(req: &RenderRequest<'_>) -> String {
    let (w, h) = req.format.size();
    let (wf, hf) = (w as f32, h as f32);
    let p = match req.brand {
        Some(b) => brand_palette(&palette(req.style), b),
        None => palette(req.style),
    };
    let font = req.brand.map_or(crate::brands::Font::Inter, |b| b.font);
    let mut rng = seeded(req.seed, req.style, req.format);
    let mut svg = String::with_capacity(8 * 1024);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );

    // Background: a three-stop gradient at a seeded angle.
    let angle = rng.range(0.0, 360.0);
    let _ = write!(
        svg,
        r#"<defs><linearGradient id="bg" gradientTransform="rotate({angle:.1} 0.5 0.5)"><stop offset="0" stop-color="{}"/><stop offset="0.55" stop-color="{}"/><stop offset="1" stop-color="{}"/></linearGradient></defs><rect width="{w}" height="{h}" fill="url(#bg)"/>"#,
        p.stops[0], p.stops[1], p.stops[2]
    );
    decorate(&mut svg, req.style, &p, &mut rng, wf, hf);

    // Headline, centred in its area.
    let area = headline_area(req.format);
    let text = if p.uppercase {
        req.prompt.to_uppercase()
    } else {
        req.prompt.to_owned()
    };
    let headline = layout_headline_in(font, &text, area);
    let top = area.y + (area.h - headline.height()) / 2.0;
    let cx = area.x + area.w / 2.0;
    let weight = if req.style == Style::Minimal && font == crate::brands::Font::Inter {
        400
    } else {
        700
    };
    let family = font.family();
    for (i, line) in headline.lines.iter().enumerate() {
        let baseline = top + headline.line_height * (i as f32 + 0.8);
        let _ = write!(
            svg,
            r#"<text x="{cx:.1}" y="{baseline:.1}" font-family="{family}" font-weight="{weight}" font-size="{:.1}" fill="{}" text-anchor="middle">{}</text>"#,
            headline.font_size,
            p.text,
            escape(line)
        );
    }

    // A small label in the band under the headline.
    let safe = req.format.safe_area();
    let label_size = (safe.h * 0.045).clamp(14.0, 34.0);
    let _ = write!(
        svg,
        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{:.1}" fill="{}"/>"#,
        cx - label_size * 2.2,
        safe.y + safe.h - label_size * 1.9,
        label_size * 4.4,
        label_size * 0.22,
        label_size * 0.11,
        p.accent
    );
    svg.push_str("</svg>");
    svg
}

fn decorate(svg: &mut String, style: Style, p: &Palette, rng: &mut SplitMix64, w: f32, h: f32) {
    let m = w.min(h);
    match style {
        Style::Bold => {
            let x = rng.range(-0.2, 0.5) * w;
            let _ = write!(
                svg,
                r#"<polygon points="{:.0},0 {:.0},0 {:.0},{h} {:.0},{h}" fill="{}" opacity="0.9"/>"#,
                x,
                x + m * 0.18,
                x + m * 0.18 + h * 0.4,
                x + h * 0.4,
                p.accent
            );
        }
        Style::Minimal => {
            let y = rng.range(0.08, 0.14) * h;
            let _ = write!(
                svg,
                r#"<line x1="{:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="{}" stroke-width="3"/>"#,
                w * 0.07,
                w * 0.25,
                p.accent
            );
            let _ = write!(
                svg,
                r#"<circle cx="{:.0}" cy="{:.0}" r="{:.0}" fill="none" stroke="{}" stroke-width="2"/>"#,
                w * 0.86,
                h * rng.range(0.8, 0.9),
                m * 0.05,
                p.accent
            );
        }
        Style::Vibrant | Style::Pastel => {
            let (count, opacity) = if style == Style::Vibrant {
                (5, 0.28)
            } else {
                (7, 0.45)
            };
            let fills = [p.accent, p.stops[2], "#ffffff"];
            for i in 0..count {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.0}" cy="{:.0}" r="{:.0}" fill="{}" opacity="{opacity}"/>"#,
                    rng.range(-0.1, 1.1) * w,
                    rng.range(-0.1, 1.1) * h,
                    rng.range(0.12, 0.35) * m,
                    fills[i % 3]
                );
            }
        }
        Style::Neon => {
            for i in 0..3 {
                let inset = m * (0.04 + 0.035 * i as f32);
                let colour = if i == 1 { "#ff2bd6" } else { p.accent };
                let _ = write!(
                    svg,
                    r#"<rect x="{inset:.0}" y="{inset:.0}" width="{:.0}" height="{:.0}" rx="{:.0}" fill="none" stroke="{colour}" stroke-width="{:.1}" opacity="{:.2}"/>"#,
                    w - 2.0 * inset,
                    h - 2.0 * inset,
                    m * 0.03,
                    m * 0.006,
                    0.9 - 0.25 * i as f32
                );
            }
            let _ = write!(
                svg,
                r#"<circle cx="{:.0}" cy="{:.0}" r="{:.0}" fill="{}" opacity="0.12"/>"#,
                rng.range(0.2, 0.8) * w,
                rng.range(0.2, 0.8) * h,
                m * 0.45,
                p.accent
            );
        }
        Style::Retro => {
            // A setting sun, cut by horizontal bands (clipped to the sun, so the bands never
            // slice the sky behind the headline).
            let cx = rng.range(0.3, 0.7) * w;
            let r = m * 0.42;
            let cy = h * 0.98;
            let _ = write!(
                svg,
                r#"<clipPath id="sun"><circle cx="{cx:.0}" cy="{cy:.0}" r="{r:.0}"/></clipPath><circle cx="{cx:.0}" cy="{cy:.0}" r="{r:.0}" fill="{}" opacity="0.85"/><g clip-path="url(#sun)">"#,
                p.accent
            );
            for i in 0..5 {
                let y = cy - r + r * 0.22 * i as f32 + r * 0.1;
                let _ = write!(
                    svg,
                    r#"<rect x="0" y="{y:.0}" width="{w}" height="{:.1}" fill="{}"/>"#,
                    r * 0.03 * (i + 1) as f32,
                    p.stops[0]
                );
            }
            svg.push_str("</g>");
        }
        Style::Editorial => {
            // A magazine page: a red spine, a heavy rule above, a thin one below.
            let _ = write!(
                svg,
                r#"<rect x="0" y="0" width="{:.0}" height="{h}" fill="{}"/>"#,
                w * 0.035,
                p.accent
            );
            for (y, width, thickness) in [
                (h * 0.055, w * 0.86, m * 0.02),
                (h * 0.94, w * rng.range(0.3, 0.6), m * 0.005),
            ] {
                let _ = write!(
                    svg,
                    r#"<rect x="{:.0}" y="{y:.0}" width="{width:.0}" height="{thickness:.0}" fill="{}"/>"#,
                    w * 0.07,
                    p.text
                );
            }
        }
        Style::Playful => {
            let fills = [p.accent, "#f72585", "#ffffff", "#80ffdb"];
            for i in 0..18 {
                let (x, y) = (rng.range(0.0, 1.0) * w, rng.range(0.0, 1.0) * h);
                let s = rng.range(0.012, 0.03) * m;
                let rot = rng.range(0.0, 180.0);
                let _ = write!(
                    svg,
                    r#"<rect x="{:.0}" y="{:.0}" width="{:.0}" height="{:.0}" rx="{:.0}" fill="{}" transform="rotate({rot:.0} {x:.0} {y:.0})" opacity="0.85"/>"#,
                    x - s,
                    y - s / 3.0,
                    s * 2.0,
                    s * 0.66,
                    s * 0.3,
                    fills[i % 4]
                );
            }
        }
    }
}

/// The shipped fonts, loaded once; system fonts are never consulted.
pub fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(FONT_BOLD.to_vec());
        db.load_font_data(FONT_REGULAR.to_vec());
        db.load_font_data(FONT_SERIF.to_vec());
        db.load_font_data(FONT_MONO.to_vec());
        db.set_sans_serif_family("Inter");
        Arc::new(db)
    })
    .clone()
}

/// Renders `req` to RGBA pixels of the format's exact size.
pub fn render_pixmap(req: &RenderRequest<'_>) -> Result<resvg::tiny_skia::Pixmap, RenderError> {
    let svg = compose_svg(req);
    let options = usvg::Options {
        fontdb: fonts(),
        font_family: "Inter".to_owned(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(&svg, &options).map_err(|e| RenderError::Svg(e.to_string()))?;
    let (w, h) = req.format.size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| RenderError::Raster(format!("no {w}x{h} pixmap")))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    Ok(pixmap)
}

/// Renders `req` as a PNG.
pub fn render_png(req: &RenderRequest<'_>) -> Result<Vec<u8>, RenderError> {
    render_pixmap(req)?
        .encode_png()
        .map_err(|e| RenderError::Raster(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(prompt: &str, style: Style, format: Format, seed: u64) -> RenderRequest<'_> {
        RenderRequest {
            prompt,
            style,
            format,
            seed,
            brand: None,
        }
    }

    #[test]
    fn every_format_renders_at_its_exact_size() {
        for format in Format::ALL {
            let pixmap =
                render_pixmap(&req("Grand opening this Friday", Style::Vibrant, format, 1))
                    .expect("render");
            assert_eq!(
                (pixmap.width(), pixmap.height()),
                format.size(),
                "{format:?}"
            );
            let png = render_png(&req("Grand opening", Style::Bold, format, 1)).expect("png");
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes_and_seeds_vary_the_picture() {
        let a = render_png(&req(
            "Coffee tasting night",
            Style::Playful,
            Format::Linkedin,
            7,
        ))
        .unwrap();
        let b = render_png(&req(
            "Coffee tasting night",
            Style::Playful,
            Format::Linkedin,
            7,
        ))
        .unwrap();
        assert_eq!(a, b);
        let c = render_png(&req(
            "Coffee tasting night",
            Style::Playful,
            Format::Linkedin,
            8,
        ))
        .unwrap();
        assert_ne!(a, c, "another seed, another variation");
    }

    #[test]
    fn styles_look_different() {
        let pixels: Vec<Vec<u8>> = Style::ALL
            .into_iter()
            .map(|s| {
                render_pixmap(&req("Spring collection", s, Format::Linkedin, 3))
                    .unwrap()
                    .data()
                    .to_vec()
            })
            .collect();
        for i in 0..pixels.len() {
            for j in i + 1..pixels.len() {
                // Mean absolute difference per channel: styles must differ visibly, not by noise.
                let diff: u64 = pixels[i]
                    .iter()
                    .zip(&pixels[j])
                    .map(|(a, b)| u64::from(a.abs_diff(*b)))
                    .sum();
                let mean = diff as f64 / pixels[i].len() as f64;
                assert!(
                    mean > 8.0,
                    "{:?} and {:?} differ by only {mean:.1}",
                    Style::ALL[i],
                    Style::ALL[j]
                );
            }
        }
    }

    #[test]
    fn the_headline_is_drawn() {
        // The text colour must appear where the headline is, and not with an empty prompt.
        let with = render_pixmap(&req(
            "HELLO WORLD",
            Style::Minimal,
            Format::InstagramSquare,
            1,
        ))
        .unwrap();
        let dark = with
            .pixels()
            .iter()
            .filter(|p| p.red() < 60 && p.green() < 60)
            .count();
        assert!(dark > 5_000, "only {dark} text pixels");
    }

    #[test]
    fn any_valid_prompt_fits_the_safe_area() {
        let long = "Limited-time offer on handmade ceramics from our studio in Porto ".repeat(7);
        let one_word = "Supercalifragilisticexpialidocious".repeat(8);
        let prompts = [
            "Hi!",
            long.trim(),
            one_word.as_str(),
            "Summer vibes 🌞🏖️🍹 with friends 🎉",
            "مرحبا بكم في متجرنا الجديد",
            "שלום לכולם, מבצע חורף",
            "混合 text with 日本語 and emoji 🚀",
        ];
        for format in Format::ALL {
            let area = headline_area(format);
            for prompt in prompts {
                let h = layout_headline(prompt, area);
                assert!(!h.lines.is_empty(), "{format:?} {prompt}");
                assert!(h.height() <= area.h + 0.5, "{format:?} {prompt}: too tall");
                for (line, w) in h.lines.iter().zip(&h.widths) {
                    assert!(
                        *w <= area.w + 0.5,
                        "{format:?}: `{line}` is {w} wide in {}",
                        area.w
                    );
                }
            }
        }
        for prompt in prompts {
            render_png(&req(prompt, Style::Neon, Format::Story, 5)).expect("renders");
        }
    }

    #[test]
    fn markup_in_prompts_is_text_not_svg() {
        let svg = compose_svg(&req(
            "<script>alert(1)</script> & \"x\"",
            Style::Bold,
            Format::XPost,
            1,
        ));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;SCRIPT&gt;"));
    }

    #[test]
    fn a_brand_kit_paints_with_its_colours_and_font() {
        let look = BrandLook {
            colors: vec!["#1d3557".into()],
            font: crate::brands::Font::Serif,
        };
        let req = RenderRequest {
            brand: Some(&look),
            ..req("Brand day", Style::Minimal, Format::InstagramSquare, 2)
        };
        let svg = compose_svg(&req);
        assert!(svg.contains(r#"font-family="DejaVu Serif""#), "{svg}");
        // A dark kit colour gets white text.
        assert!(svg.contains(r##"fill="#ffffff" text-anchor"##), "{svg}");
        let pixmap = render_pixmap(&req).unwrap();
        let corner = pixmap.pixel(3, 3).unwrap();
        assert_eq!(
            (corner.red(), corner.green(), corner.blue()),
            (0x1d, 0x35, 0x57)
        );
        // The serif headline measures differently from Inter's.
        let area = headline_area(Format::InstagramSquare);
        assert_ne!(
            layout_headline_in(crate::brands::Font::Serif, "Brand day", area).widths,
            layout_headline_in(crate::brands::Font::Inter, "Brand day", area).widths
        );
    }
}
