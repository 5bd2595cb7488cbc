//! What an uploaded file really is: its structure walked to its end marker (so nothing hides
//! after the image), its size read from the header and checked against the decode limits
//! before any pixel is decoded (so decompression bombs fail in microseconds), then a full
//! decode under those limits (so truncated and corrupt files fail here, not in a worker).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::uploads::{Mime, codes, reject};
use image::ImageDecoder;
use shared::error::{AppError, ErrorCode};

use super::svg;

/// The most pixels an upload may have (40 megapixels).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The longest side an upload may have.
pub const MAX_SIDE: u32 = 10_000;
/// The most memory one decode may allocate: 40 MP of RGBA16 with room to spare.
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// A file that passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// Width in pixels (SVG: the size its variants are drawn at).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// For SVG, the rebuilt document: what is stored and served as the original, in place
    /// of the upload's bytes.
    pub sanitized: Option<String>,
}

fn decode_failed(detail: impl std::fmt::Display) -> AppError {
    tracing::debug!(%detail, "upload did not decode");
    reject(
        ErrorCode::Validation,
        codes::DECODE_FAILED,
        "This image could not be read: it may be truncated or damaged.",
    )
}

fn trailing() -> AppError {
    reject(
        ErrorCode::Validation,
        codes::TRAILING_DATA,
        "This file has data after the end of the image (it may be two files in one). Export it again from your editor.",
    )
}

/// Checks `width` x `height` against the limits.
pub fn check_size(width: u32, height: u32) -> Result<(), AppError> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err(decode_failed("zero-sized image"));
    }
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(reject(
            ErrorCode::Validation,
            codes::IMAGE_TOO_LARGE,
            format!(
                "This image is {width} x {height} pixels; uploads may be at most {MAX_SIDE} pixels a side and {} megapixels.",
                MAX_PIXELS / 1_000_000
            ),
        ));
    }
    Ok(())
}

/// Inspects the spooled file at `path`, whose bytes are of type `mime`.
///
/// Memory: a raster decode is held to [`MAX_ALLOC`] by the decoder's limits, after the
/// header's size was checked; an SVG (read whole, at most `UPLOAD_MAX_BYTES`) to the budget
/// in `svg`'s documentation. The host runs two inspections at a time, so the total stays near
/// 1 GiB whatever is uploaded.
pub fn inspect(path: &Path, mime: Mime) -> Result<Inspected, AppError> {
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, path = %path.display(), "could not read a spooled upload");
        AppError::internal()
    };
    if mime == Mime::Svg {
        let text = std::fs::read(path).map_err(internal)?;
        return inspect_svg(&text);
    }
    let len = std::fs::metadata(path).map_err(internal)?.len();
    inspect_raster(|| File::open(path), len, mime).map_err(|e| e.into_app(internal))
}

/// [`inspect`] on bytes in memory, for callers that hold the whole file (the fuzz targets
/// and tests): the same checks, in the same order, with the same answers.
pub fn inspect_bytes(bytes: &[u8], mime: Mime) -> Result<Inspected, AppError> {
    if mime == Mime::Svg {
        return inspect_svg(bytes);
    }
    let open = || Ok(std::io::Cursor::new(bytes));
    inspect_raster(open, bytes.len() as u64, mime).map_err(|e| {
        e.into_app(|e| {
            tracing::error!(error = %e, "could not read an upload in memory");
            AppError::internal()
        })
    })
}

fn inspect_svg(text: &[u8]) -> Result<Inspected, AppError> {
    let checked = svg::check(text)?;
    Ok(Inspected {
        width: checked.width,
        height: checked.height,
        sanitized: Some(checked.svg),
    })
}

/// A failure of [`inspect_raster`]: the file's fault, or the spool's (an I/O error opening
/// it again, which is ours).
enum RasterError {
    Refused(AppError),
    Io(std::io::Error),
}

impl RasterError {
    fn into_app(self, internal: impl FnOnce(std::io::Error) -> AppError) -> AppError {
        match self {
            RasterError::Refused(e) => e,
            RasterError::Io(e) => internal(e),
        }
    }
}

impl From<AppError> for RasterError {
    fn from(e: AppError) -> Self {
        RasterError::Refused(e)
    }
}

/// The raster checks on the `len` bytes that `open` reads from their start (once for the
/// header and pixels, once for the structure).
fn inspect_raster<R: Read + Seek>(
    mut open: impl FnMut() -> std::io::Result<R>,
    len: u64,
    mime: Mime,
) -> Result<Inspected, RasterError> {
    let format = match mime {
        Mime::Png => image::ImageFormat::Png,
        Mime::Jpeg => image::ImageFormat::Jpeg,
        _ => image::ImageFormat::WebP,
    };
    // Header first: the limits before any pixel.
    let mut reader =
        image::ImageReader::with_format(BufReader::new(open().map_err(RasterError::Io)?), format);
    reader.limits(limits());
    let decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large_unknown(),
        other => decode_failed(other),
    })?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    // Then the structure: where the image ends must be where the file ends.
    let mut file = open().map_err(RasterError::Io)?;
    let end = match mime {
        Mime::Png => png_end(&mut file),
        Mime::Jpeg => jpeg_end(&mut file),
        _ => webp_end(&mut file),
    }
    .map_err(decode_failed)?;
    if end != len {
        return Err(trailing().into());
    }
    // Then every pixel, under the same limits.
    image::DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => too_large_unknown(),
        other => decode_failed(other),
    })?;
    Ok(Inspected {
        width,
        height,
        sanitized: None,
    })
}

fn too_large_unknown() -> AppError {
    reject(
        ErrorCode::Validation,
        codes::IMAGE_TOO_LARGE,
        format!(
            "This image needs more memory to open than uploads may use (at most {MAX_SIDE} pixels a side and {} megapixels).",
            MAX_PIXELS / 1_000_000
        ),
    )
}

/// The decode limits.
pub fn limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

type Walk = Result<u64, String>;

fn read_exact<const N: usize>(r: &mut impl Read) -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)
        .map_err(|e| format!("unexpected end: {e}"))?;
    Ok(b)
}

/// The offset just after a PNG's `IEND` chunk, walking chunk lengths (not data).
fn png_end<R: Read + Seek>(file: &mut R) -> Walk {
    let mut r = BufReader::new(file);
    let mut pos: u64 = 8;
    r.seek(SeekFrom::Start(8)).map_err(|e| e.to_string())?;
    loop {
        let head = read_exact::<8>(&mut r)?;
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        if len > 0x7fff_ffff {
            return Err("chunk length out of range".into());
        }
        pos += 8 + len + 4;
        if &head[4..8] == b"IEND" {
            // The CRC must be there too.
            r.seek_relative(len as i64).map_err(|e| e.to_string())?;
            read_exact::<4>(&mut r)?;
            return Ok(pos);
        }
        r.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
    }
}

/// The offset just after a JPEG's end-of-image marker: segments are skipped by their
/// lengths, entropy-coded data is scanned for the next marker.
fn jpeg_end<R: Read + Seek>(file: &mut R) -> Walk {
    let mut r = BufReader::new(file);
    r.seek(SeekFrom::Start(2)).map_err(|e| e.to_string())?;
    let mut pos: u64 = 2;
    let mut byte = || -> Result<u8, String> {
        let b = read_exact::<1>(&mut r)?[0];
        Ok(b)
    };
    // Reads one byte at a time through a closure so the offset stays exact.
    let mut next = |pos: &mut u64| -> Result<u8, String> {
        *pos += 1;
        byte()
    };
    let mut in_scan = false;
    loop {
        let b = next(&mut pos)?;
        if b != 0xff {
            if in_scan {
                continue;
            }
            return Err(format!("expected a marker at {}", pos - 1));
        }
        // Fill bytes: any number of 0xFF before a marker.
        let mut m = next(&mut pos)?;
        while m == 0xff {
            m = next(&mut pos)?;
        }
        match m {
            // A stuffed zero or a restart marker: still inside scan data.
            0x00 | 0xd0..=0xd7 if in_scan => continue,
            0xd9 => return Ok(pos),
            0x01 | 0xd0..=0xd8 => continue,
            _ => {
                let hi = next(&mut pos)?;
                let lo = next(&mut pos)?;
                let len = u16::from_be_bytes([hi, lo]);
                if len < 2 {
                    return Err("segment length below 2".into());
                }
                for _ in 0..len - 2 {
                    next(&mut pos)?;
                }
                in_scan = m == 0xda;
            }
        }
    }
}

/// The end of a WebP's RIFF container, from its size field, after walking its chunks: each
/// must lie inside the container, as the metadata stripping reads them.
fn webp_end<R: Read + Seek>(file: &mut R) -> Walk {
    file.seek(SeekFrom::Start(4)).map_err(|e| e.to_string())?;
    let size = read_exact::<4>(file)?;
    let size = u64::from(u32::from_le_bytes(size));
    let riff_end = 8 + size;
    let mut pos: u64 = 12;
    while pos < riff_end {
        if pos + 8 > riff_end {
            return Err("a chunk header runs past the container".into());
        }
        file.seek(SeekFrom::Start(pos + 4))
            .map_err(|e| e.to_string())?;
        let chunk = u64::from(u32::from_le_bytes(read_exact::<4>(file)?));
        if pos + 8 + chunk > riff_end {
            return Err("a chunk runs past the container".into());
        }
        pos += 8 + chunk + (chunk & 1);
    }
    // The RIFF size counts from byte 8 and is padded to an even length.
    Ok(riff_end + (size & 1))
}
