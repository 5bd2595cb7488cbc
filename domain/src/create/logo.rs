//! A brand kit's logo on a finished picture: scaled to fit a box in the bottom-right corner
//! of the format's safe area (the band under the headline), never upscaled past its own
//! size, and blended by its alpha so transparent logos sit on the picture.

use crate::create::{Format, Rect};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::provider::RgbaImage;
use super::variants::EncodeError;

/// Where a `logo_w` x `logo_h` logo goes on `format`: inside the safe area, at most 30% of
/// its width and 80% of the band under the headline high, aspect ratio kept.
pub fn logo_box(format: Format, logo_w: u32, logo_h: u32) -> Rect {
    let safe = format.safe_area();
    let band = (safe.h * 0.14).min(120.0);
    let (max_w, max_h) = (safe.w * 0.3, band * 0.8);
    let (lw, lh) = (logo_w.max(1) as f32, logo_h.max(1) as f32);
    let scale = (max_w / lw).min(max_h / lh).min(1.0);
    let (w, h) = ((lw * scale).floor().max(1.0), (lh * scale).floor().max(1.0));
    Rect {
        x: (safe.x + safe.w - w).floor(),
        y: (safe.y + safe.h - band + (band - h) / 2.0).floor(),
        w,
        h,
    }
}

/// Draws `logo` onto `image` (a picture of `format`'s size) and returns where.
pub fn place(image: &mut RgbaImage, logo: &RgbaImage, format: Format) -> Result<Rect, EncodeError> {
    let at = logo_box(format, logo.width, logo.height);
    let (w, h) = (at.w as u32, at.h as u32);
    let scaled = if (w, h) == (logo.width, logo.height) {
        logo.pixels.clone()
    } else {
        let src = ImageRef::new(logo.width, logo.height, &logo.pixels, PixelType::U8x4)
            .map_err(|e| EncodeError::new(e.to_string()))?;
        let mut dst = Image::new(w, h, PixelType::U8x4);
        Resizer::new()
            .resize(
                &src,
                &mut dst,
                &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom)),
            )
            .map_err(|e| EncodeError::new(e.to_string()))?;
        dst.into_vec()
    };
    let (x0, y0) = (at.x as u32, at.y as u32);
    for row in 0..h {
        let y = y0 + row;
        if y >= image.height {
            break;
        }
        for col in 0..w {
            let x = x0 + col;
            if x >= image.width {
                break;
            }
            let s = ((row * w + col) * 4) as usize;
            let d = ((y * image.width + x) * 4) as usize;
            let a = u32::from(scaled[s + 3]);
            if a == 0 {
                continue;
            }
            for c in 0..3 {
                let src = u32::from(scaled[s + c]);
                let dst = u32::from(image.pixels[d + c]);
                image.pixels[d + c] = ((src * a + dst * (255 - a) + 127) / 255) as u8;
            }
            let da = u32::from(image.pixels[d + 3]);
            image.pixels[d + 3] = (a + da * (255 - a) / 255).min(255) as u8;
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logo_stays_inside_the_safe_area_for_every_format() {
        for format in Format::ALL {
            for (lw, lh) in [(1000, 200), (200, 1000), (64, 64), (5000, 5000)] {
                let r = logo_box(format, lw, lh);
                let safe = format.safe_area();
                assert!(r.x >= safe.x && r.y >= safe.y, "{format:?} {r:?}");
                assert!(r.x + r.w <= safe.x + safe.w + 0.5, "{format:?} {r:?}");
                assert!(r.y + r.h <= safe.y + safe.h + 0.5, "{format:?} {r:?}");
                assert!(r.w <= lw as f32 && r.h <= lh as f32, "never upscaled");
                // Aspect ratio kept to within a pixel's rounding either way.
                let (lw, lh) = (lw as f32, lh as f32);
                assert!((r.w * lh - r.h * lw).abs() <= lw.max(lh), "{r:?}");
            }
        }
    }

    #[test]
    fn an_opaque_logo_replaces_and_a_transparent_one_leaves_the_pixels() {
        let format = Format::InstagramSquare;
        let (w, h) = format.size();
        let mut image = RgbaImage {
            width: w,
            height: h,
            pixels: [10, 20, 30, 255].repeat((w * h) as usize),
        };
        let mut logo_pixels = [250, 0, 0, 255].repeat(50 * 20);
        // The right half transparent.
        for y in 0..20 {
            for x in 25..50 {
                logo_pixels[(y * 50 + x) * 4 + 3] = 0;
            }
        }
        let logo = RgbaImage {
            width: 50,
            height: 20,
            pixels: logo_pixels,
        };
        let at = place(&mut image, &logo, format).unwrap();
        let px = |x: f32, y: f32| {
            let i = ((y as u32 * w + x as u32) * 4) as usize;
            image.pixels[i..i + 4].to_vec()
        };
        assert_eq!(px(at.x + 2.0, at.y + 2.0), [250, 0, 0, 255]);
        assert_eq!(px(at.x + at.w - 2.0, at.y + 2.0), [10, 20, 30, 255]);
        assert_eq!(px(at.x - 3.0, at.y + 2.0), [10, 20, 30, 255]);
    }
}
