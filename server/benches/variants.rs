//! The upload variant pipeline against libvips' `vipsthumbnail` on the same inputs and the
//! same outputs: three WebP files per image (320 px wide, 720 px wide, full size, quality 82
//! at libwebp effort 2, metadata stripped), one thread each.
//!
//! Ours decodes each image once and scales each size from the next larger one; the libvips
//! CLI makes one output per run, so it runs three times per image (its process start-up, a few
//! milliseconds, is part of its figure: it is how the tool is used).
//!
//! Run: `cargo bench -p server --bench variants --target-dir target/native`
//! (needs `vipsthumbnail` from Debian's `libvips-tools`; `BENCH_ROUNDS` sets the rounds,
//! default 5). Inputs are generated: 3000x2000 and 1600x1200 JPEG photos, a 2000x2000 PNG.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use domain::uploads::Mime;
use domain::uploads::variants::make_variants;

fn photo(w: u32, h: u32) -> image::RgbImage {
    // Smooth gradients with texture: compresses and scales like a photograph, unlike noise.
    image::RgbImage::from_fn(w, h, |x, y| {
        let t = ((x * 31 + y * 17) % 97) as u8;
        image::Rgb([
            ((x * 255) / w) as u8 ^ (t / 8),
            ((y * 255) / h) as u8,
            (((x + y) * 255) / (w + h)) as u8 ^ (t / 4),
        ])
    })
}

fn inputs(dir: &Path) -> Vec<(PathBuf, Mime, u32)> {
    let mut out = Vec::new();
    for (w, h) in [(3000u32, 2000u32), (1600, 1200)] {
        let p = dir.join(format!("photo-{w}x{h}.jpg"));
        photo(w, h).save(&p).expect("write JPEG");
        out.push((p, Mime::Jpeg, w));
    }
    let p = dir.join("art-2000x2000.png");
    image::DynamicImage::ImageRgb8(photo(2000, 2000))
        .to_rgba8()
        .save(&p)
        .expect("write PNG");
    out.push((p, Mime::Png, 2000));
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn vips(input: &Path, width: u32, out: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("vipsthumbnail")
        .env("VIPS_CONCURRENCY", "1")
        .arg(input)
        .arg("--size")
        .arg(format!("{width}x"))
        .arg("-o")
        // The same encoder settings as ours: quality 82, libwebp effort 2 (WEBP_METHOD).
        .arg(format!(
            "{}[Q=82,effort={},strip]",
            out.display(),
            domain::create::variants::WEBP_METHOD
        ))
        .status()
        .expect("run vipsthumbnail");
    assert!(
        status.success(),
        "vipsthumbnail failed on {}",
        input.display()
    );
    started.elapsed()
}

fn main() {
    if Command::new("vipsthumbnail")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("vipsthumbnail not found: install libvips-tools (`./dev bench-variants` does)");
        std::process::exit(1);
    }
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("sc-variants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let mut total_ours = Duration::ZERO;
    let mut total_vips = Duration::ZERO;
    println!(
        "{:<22} {:>12} {:>16} {:>7}",
        "input", "ours (ms)", "vipsthumbnail", "ratio"
    );
    for (path, mime, width) in inputs(&dir) {
        let bytes = std::fs::read(&path).expect("read input");
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            let v = make_variants(&bytes, mime).expect("variants");
            ours.push(started.elapsed());
            std::hint::black_box(v);
            let mut t = Duration::ZERO;
            for w in [320, 720, width] {
                t += vips(&path, w, &dir.join(format!("out-{w}.webp")));
            }
            theirs.push(t);
        }
        let (o, t) = (median(ours), median(theirs));
        total_ours += o;
        total_vips += t;
        println!(
            "{:<22} {:>12.1} {:>16.1} {:>6.2}x",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            o.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e3,
            o.as_secs_f64() / t.as_secs_f64()
        );
    }
    println!(
        "{:<22} {:>12.1} {:>16.1} {:>6.2}x  (target: at most 0.8x)",
        "all",
        total_ours.as_secs_f64() * 1e3,
        total_vips.as_secs_f64() * 1e3,
        total_ours.as_secs_f64() / total_vips.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
