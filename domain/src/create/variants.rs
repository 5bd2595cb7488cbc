//! From one decoded picture to everything we store: the PNG original at the format's exact
//! size and WebP variants 320 px wide, 720 px wide and at full size.
//!
//! The picture is decoded once and every size is made from pixels in memory: the 720 variant
//! from the full picture and the 320 from the 720 (each step a good-quality convolution), so
//! the work shrinks with each size instead of restarting from the original.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::provider::RgbaImage;

/// The widths of the downsized WebP variants.
pub const VARIANT_WIDTHS: [u32; 2] = [320, 720];

/// WebP quality (0 to 100): visually clean for graphics with text, about a tenth of the PNG.
pub const WEBP_QUALITY: f32 = 82.0;

/// libwebp's effort (0 fastest to 6 smallest). 4 is its default; lower trades a few percent
/// of size for time (measured in `benches/render.rs`).
pub const WEBP_METHOD: i32 = 2;

/// Everything stored for one picture.
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Width of the original.
    pub width: u32,
    /// Height of the original.
    pub height: u32,
    /// The PNG original.
    pub png: Vec<u8>,
    /// WebP, 320 px wide.
    pub webp_320: Vec<u8>,
    /// WebP, 720 px wide.
    pub webp_720: Vec<u8>,
    /// WebP at full size.
    pub webp_full: Vec<u8>,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Encoded({}x{}, png {} B, webp {}/{}/{} B)",
            self.width,
            self.height,
            self.png.len(),
            self.webp_320.len(),
            self.webp_720.len(),
            self.webp_full.len()
        )
    }
}

/// Why encoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encoding variants: {0}")]
pub struct EncodeError(String);

impl EncodeError {
    /// An error with this description.
    pub fn new(detail: impl Into<String>) -> Self {
        Self(detail.into())
    }
}

fn err(e: impl std::fmt::Display) -> EncodeError {
    EncodeError(e.to_string())
}

fn resize_options() -> ResizeOptions {
    ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom))
}

/// Scales and centre-crops `image` to exactly `width` x `height` (like CSS `object-fit:
/// cover`). A picture already that size is returned as is.
pub fn fit(image: RgbaImage, width: u32, height: u32) -> Result<RgbaImage, EncodeError> {
    if (image.width, image.height) == (width, height) {
        return Ok(image);
    }
    check(&image)?;
    let src = Image::from_vec_u8(image.width, image.height, image.pixels, PixelType::U8x4)
        .map_err(err)?;
    let mut dst = Image::new(width, height, PixelType::U8x4);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &resize_options().fit_into_destination(Some((0.5, 0.5))),
        )
        .map_err(err)?;
    Ok(RgbaImage {
        width,
        height,
        pixels: dst.into_vec(),
    })
}

fn check(image: &RgbaImage) -> Result<(), EncodeError> {
    let expected = image.width as usize * image.height as usize * 4;
    if image.width == 0 || image.height == 0 || image.pixels.len() != expected {
        return Err(EncodeError(format!(
            "{}x{} picture has {} bytes, expected {expected}",
            image.width,
            image.height,
            image.pixels.len()
        )));
    }
    Ok(())
}

/// PNG with fast compression: the original is downloaded rarely and stored once, so encoding
/// speed matters more than the last tenth of its size.
pub fn encode_png(image: &RgbaImage) -> Result<Vec<u8>, EncodeError> {
    check(image)?;
    let mut out = Vec::with_capacity(image.pixels.len() / 4);
    {
        let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(err)?;
        writer.write_image_data(&image.pixels).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}

/// Lossy WebP at [`WEBP_QUALITY`].
pub fn encode_webp(image: &RgbaImage) -> Result<Vec<u8>, EncodeError> {
    check(image)?;
    let mut config = webp::WebPConfig::new().map_err(|()| err("libwebp config"))?;
    config.lossless = 0;
    config.quality = WEBP_QUALITY;
    config.method = WEBP_METHOD;
    config.alpha_compression = 1;
    // An opaque picture (every built-in render) is handed over as RGB: libwebp then skips
    // analysing and storing an alpha plane.
    let opaque = image.pixels.chunks_exact(4).all(|p| p[3] == 255);
    let rgb: Vec<u8>;
    let encoder = if opaque {
        rgb = image
            .pixels
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        webp::Encoder::from_rgb(&rgb, image.width, image.height)
    } else {
        webp::Encoder::from_rgba(&image.pixels, image.width, image.height)
    };
    let encoded = encoder
        .encode_advanced(&config)
        .map_err(|e| err(format!("libwebp: {e:?}")))?;
    Ok(encoded.to_vec())
}

/// `image` scaled to `width` wide, keeping its aspect ratio.
pub fn downscale(
    resizer: &mut Resizer,
    image: &RgbaImage,
    width: u32,
) -> Result<RgbaImage, EncodeError> {
    check(image)?;
    let height = ((u64::from(image.height) * u64::from(width) + u64::from(image.width) / 2)
        / u64::from(image.width))
    .max(1) as u32;
    let src =
        ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x4).map_err(err)?;
    let mut dst = Image::new(width, height, PixelType::U8x4);
    resizer
        .resize(&src, &mut dst, &resize_options())
        .map_err(err)?;
    Ok(RgbaImage {
        width,
        height,
        pixels: dst.into_vec(),
    })
}

/// The three WebP variants of `image`: 320 px wide, 720 px wide and full size, in that
/// order. Each smaller size is scaled from the next larger one, so the work shrinks with each
/// size. Variants never upscale: a picture narrower than a variant width gets that variant at
/// its own size (and the same bytes).
pub fn encode_webp_variants(image: &RgbaImage) -> Result<[Vec<u8>; 3], EncodeError> {
    check(image)?;
    let mut resizer = Resizer::new();
    let webp_full = encode_webp(image)?;
    let [small_w, medium_w] = VARIANT_WIDTHS;
    let medium = (image.width > medium_w)
        .then(|| downscale(&mut resizer, image, medium_w))
        .transpose()?;
    let webp_720 = match &medium {
        Some(m) => encode_webp(m)?,
        None => webp_full.clone(),
    };
    let medium = medium.as_ref().unwrap_or(image);
    let webp_320 = if medium.width > small_w {
        encode_webp(&downscale(&mut resizer, medium, small_w)?)?
    } else {
        webp_720.clone()
    };
    Ok([webp_320, webp_720, webp_full])
}

/// Makes the PNG and the three WebP variants of `image` (already at its final size).
pub fn encode_all(image: &RgbaImage) -> Result<Encoded, EncodeError> {
    let png = encode_png(image)?;
    let [webp_320, webp_720, webp_full] = encode_webp_variants(image)?;
    Ok(Encoded {
        width: image.width,
        height: image.height,
        png,
        webp_320,
        webp_720,
        webp_full,
    })
}
