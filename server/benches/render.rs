//! Built-in renderer throughput: one Instagram-portrait (1080x1350) image, composed,
//! rasterised, and encoded as everything we store (PNG plus WebP at 320, 720 and full
//! width), on one thread.
//!
//! Run: `cargo bench -p server --bench render --target-dir target/native`

use std::time::{Duration, Instant};

use domain::create::provider::{ImageRequest, render_builtin};
use domain::create::render::{RenderRequest, render_pixmap};
use domain::create::variants;
use domain::create::{Format, Style};

fn measure(label: &str, iterations: u32, mut f: impl FnMut(u32)) {
    // Warm up: the font database and caches are built on first use.
    f(0);
    let mut times: Vec<Duration> = (1..=iterations)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = times.iter().sum::<Duration>() / iterations;
    println!(
        "{label}: median {:.1} ms, mean {:.1} ms, p90 {:.1} ms, min {:.1} ms ({iterations} runs)",
        ms(times[times.len() / 2]),
        ms(mean),
        ms(times[times.len() * 9 / 10]),
        ms(times[0]),
    );
}

fn main() {
    let prompt = "Summer sale: 30% off all rooftop tours in Lisbon this weekend";
    for style in [Style::Vibrant, Style::Neon, Style::Playful] {
        let req = |seed: u32| RenderRequest {
            prompt,
            style,
            format: Format::InstagramPortrait,
            seed: u64::from(seed),
            brand: None,
        };
        let name = style.slug();
        measure(
            &format!("render 1080x1350 {name} (pixels only)"),
            30,
            |seed| {
                std::hint::black_box(render_pixmap(&req(seed)).expect("render"));
            },
        );
        let image = |seed: u32| ImageRequest {
            prompt: prompt.to_owned(),
            style,
            format: Format::InstagramPortrait,
            seed: u64::from(seed),
            brand: None,
        };
        let picture = render_builtin(&image(0)).expect("render");
        measure("  of which PNG", 10, |_| {
            std::hint::black_box(variants::encode_png(&picture).expect("png"));
        });
        measure("  of which full-size WebP", 10, |_| {
            std::hint::black_box(variants::encode_webp(&picture).expect("webp"));
        });
        measure("  of which 1080->720 resize", 10, |_| {
            std::hint::black_box(
                variants::downscale(&mut Default::default(), &picture, 720).expect("resize"),
            );
        });
        measure(&format!("variants only (PNG + 3 WebP) {name}"), 30, |_| {
            std::hint::black_box(variants::encode_all(&picture).expect("encode"));
        });
        measure(
            &format!("render 1080x1350 {name} + PNG + 3 WebP variants"),
            30,
            |seed| {
                let picture = render_builtin(&image(seed)).expect("render");
                std::hint::black_box(variants::encode_all(&picture).expect("encode"));
            },
        );
        let sizes = variants::encode_all(&picture).expect("encode");
        println!("  stored sizes: {sizes:?}");
    }
}
