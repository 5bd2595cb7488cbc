//! Metadata taken out of uploaded raster originals before they are stored.
//!
//! A photo's EXIF can carry where it was taken (GPS), the camera's serial number and the
//! time; XMP, IPTC, PNG text chunks and JPEG comments can carry anything. The original is
//! downloadable by anyone holding its URL, so what is stored is the upload with every such
//! block removed: the image data and what decoding needs (JPEG tables and frames, JFIF,
//! `ICC_PROFILE` and `Adobe` segments; PNG's critical, colour, transparency and animation
//! chunks; WebP's image, alpha, animation and ICC chunks) are copied byte for byte, so the
//! pixels are exactly the uploader's. The one EXIF field that changes how the picture looks,
//! its orientation, is kept as a minimal EXIF block of that single tag (only when it is not
//! the default), so variants and viewers still turn the photo upright.
//!
//! This happens when the upload is stored, not when it is downloaded: nothing with GPS is
//! ever kept, and serving stays a plain stream of stored bytes (with ranges). The stored
//! object keeps the key and the content hash of the upload as sent, which remains the
//! identity for de-duplication (the same file uploaded again is recognised before any work)
//! and a valid ETag, since the stored bytes are a fixed function of it. Exact bytes are not
//! kept for anyone: the creator has their own file.
//!
//! Works in memory (originals are at most `UPLOAD_MAX_BYTES`, and this runs after the full
//! decode, which holds far more). Input that does not parse is refused by the caller; the
//! inspection before this has already walked the same structure.

use crate::uploads::Mime;

/// Why the metadata could not be taken out: a structure that does not parse.
#[derive(Debug, PartialEq, Eq)]
pub struct Unparsable;

/// `data` without its metadata; SVG (sanitised elsewhere) is returned as it is.
pub fn strip(mime: Mime, data: &[u8]) -> Result<Vec<u8>, Unparsable> {
    match mime {
        Mime::Jpeg => jpeg(data),
        Mime::Png => png(data),
        Mime::Webp => webp(data),
        Mime::Svg => Ok(data.to_vec()),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The orientation (2 to 8) in a TIFF-structured EXIF block (with or without the `Exif\0\0`
/// header), if it has one other than the default.
fn orientation(exif: &[u8]) -> Option<u16> {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let little = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = u16_at(ifd)?;
    for n in 0..usize::from(entries) {
        let entry = ifd + 2 + 12 * n;
        // Tag 0x0112 (Orientation), type 3 (SHORT), one value.
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 {
            let value = u16_at(entry + 8)?;
            return (2..=8).contains(&value).then_some(value);
        }
    }
    None
}

/// A TIFF block (big-endian) holding only `orientation`.
fn orientation_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

fn jpeg(data: &[u8]) -> Result<Vec<u8>, Unparsable> {
    if !data.starts_with(&[0xff, 0xd8]) {
        return Err(Unparsable);
    }
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&[0xff, 0xd8]);
    let mut i = 2;
    loop {
        if data.get(i) != Some(&0xff) {
            return Err(Unparsable);
        }
        while data.get(i) == Some(&0xff) {
            i += 1;
        }
        let marker = *data.get(i).ok_or(Unparsable)?;
        i += 1;
        match marker {
            0xd9 => {
                out.extend_from_slice(&[0xff, 0xd9]);
                return Ok(out);
            }
            0x01 | 0xd0..=0xd7 => {
                out.extend_from_slice(&[0xff, marker]);
                continue;
            }
            0x00 | 0xd8 => return Err(Unparsable),
            _ => {}
        }
        let len = usize::from(be16(data, i).ok_or(Unparsable)?);
        let segment = data.get(i..i + len).ok_or(Unparsable)?;
        let body = segment.get(2..).ok_or(Unparsable)?;
        i += len;
        let keep = match marker {
            // JFIF (APP0), colour profile (APP2), Adobe's colour transform (APP14).
            0xe0 => true,
            0xe2 => body.starts_with(b"ICC_PROFILE\0"),
            0xee => body.starts_with(b"Adobe"),
            0xe1 => {
                if let Some(o) = body
                    .starts_with(b"Exif\0\0")
                    .then(|| orientation(body))
                    .flatten()
                {
                    let mut exif = b"Exif\0\0".to_vec();
                    exif.extend_from_slice(&orientation_tiff(o));
                    out.extend_from_slice(&[0xff, 0xe1]);
                    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
                    out.extend_from_slice(&exif);
                }
                false
            }
            // Every other application segment (EXIF, XMP, IPTC, vendors') and comments.
            0xe3..=0xef | 0xfe => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(&[0xff, marker]);
            out.extend_from_slice(segment);
        }
        if marker == 0xda {
            // The entropy-coded scan runs to the next marker that is neither a stuffed 0xff
            // nor a restart marker.
            let mut j = i;
            while j + 1 < data.len() {
                if data[j] == 0xff && data[j + 1] != 0 && !(0xd0..=0xd7).contains(&data[j + 1]) {
                    break;
                }
                j += 1;
            }
            if j + 1 >= data.len() {
                return Err(Unparsable);
            }
            out.extend_from_slice(&data[i..j]);
            i = j;
        }
    }
}

/// PNG's CRC-32 (ISO-HDLC), of the chunk type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xedb8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png(data: &[u8]) -> Result<Vec<u8>, Unparsable> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    /// What decoding and showing the picture needs; text, time, EXIF and unknown chunks go.
    const KEEP: &[&[u8; 4]] = &[
        b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
        b"bKGD", b"pHYs", b"hIST", b"sPLT", b"cICP", b"mDCv", b"cLLi", b"acTL", b"fcTL", b"fdAT",
    ];
    if !data.starts_with(SIGNATURE) {
        return Err(Unparsable);
    }
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(SIGNATURE);
    let mut i = SIGNATURE.len();
    loop {
        let len = usize::try_from(be32(data, i).ok_or(Unparsable)?).map_err(|_| Unparsable)?;
        let chunk = data.get(i..i + 12 + len).ok_or(Unparsable)?;
        let kind = &chunk[4..8];
        i += 12 + len;
        if kind == b"eXIf" {
            if let Some(o) = orientation(&chunk[8..8 + len]) {
                let tiff = orientation_tiff(o);
                let mut typed = b"eXIf".to_vec();
                typed.extend_from_slice(&tiff);
                out.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
                out.extend_from_slice(&typed);
                out.extend_from_slice(&crc32(&typed).to_be_bytes());
            }
        } else if KEEP.iter().any(|k| &k[..] == kind) {
            out.extend_from_slice(chunk);
        }
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

fn webp(data: &[u8]) -> Result<Vec<u8>, Unparsable> {
    /// Image data, alpha, animation and colour profile; EXIF is rebuilt, XMP and unknown go.
    const KEEP: &[&[u8; 4]] = &[
        b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP",
    ];
    if data.get(..4) != Some(b"RIFF") || data.get(8..12) != Some(b"WEBP") {
        return Err(Unparsable);
    }
    let end = usize::try_from(le32(data, 4).ok_or(Unparsable)?)
        .map_err(|_| Unparsable)?
        .checked_add(8)
        .ok_or(Unparsable)?;
    let data = data.get(..end).ok_or(Unparsable)?;
    let mut chunks: Vec<(&[u8], Vec<u8>)> = Vec::new();
    let mut exif_kept = false;
    let mut i = 12;
    while i < data.len() {
        let kind = data.get(i..i + 4).ok_or(Unparsable)?;
        let size = usize::try_from(le32(data, i + 4).ok_or(Unparsable)?).map_err(|_| Unparsable)?;
        let payload = data.get(i + 8..i + 8 + size).ok_or(Unparsable)?;
        i += 8 + size + (size & 1);
        if kind == b"EXIF" {
            if let Some(o) = orientation(payload) {
                chunks.push((b"EXIF", orientation_tiff(o)));
                exif_kept = true;
            }
        } else if KEEP.iter().any(|k| &k[..] == kind) {
            chunks.push((kind, payload.to_vec()));
        }
    }
    for (kind, payload) in &mut chunks {
        if *kind == b"VP8X" {
            // Flags: 0x08 EXIF, 0x04 XMP; say only what is still there.
            let flags = payload.first_mut().ok_or(Unparsable)?;
            *flags &= !0x0c;
            if exif_kept {
                *flags |= 0x08;
            }
        }
    }
    let body: usize = chunks
        .iter()
        .map(|(_, p)| 8 + p.len() + (p.len() & 1))
        .sum();
    let mut out = Vec::with_capacity(12 + body);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(
        &u32::try_from(4 + body)
            .map_err(|_| Unparsable)?
            .to_le_bytes(),
    );
    out.extend_from_slice(b"WEBP");
    for (kind, payload) in &chunks {
        out.extend_from_slice(kind);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        if payload.len() & 1 == 1 {
            out.push(0);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF block with an orientation and a GPS IFD naming a place.
    fn exif_with_gps(orientation: u16) -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
        t.extend_from_slice(&orientation.to_le_bytes());
        t.extend_from_slice(&[0, 0]);
        // GPS IFD pointer to offset 38.
        t.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
        t.extend_from_slice(&[0, 0, 0, 0]);
        // GPS IFD: one ASCII entry (GPSMapDatum) at offset 56.
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&[0x12, 0, 2, 0, 12, 0, 0, 0, 56, 0, 0, 0]);
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(b"SECRETPLACE\0");
        t
    }

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    fn decoded_orientation(data: &[u8]) -> image::metadata::Orientation {
        use image::ImageDecoder;
        let mut decoder = image::ImageReader::new(std::io::Cursor::new(data))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms)
    }

    fn pixels(data: &[u8]) -> Vec<u8> {
        image::load_from_memory(data).unwrap().to_rgb8().into_raw()
    }

    fn has(data: &[u8], needle: &[u8]) -> bool {
        data.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn jpeg_loses_gps_comments_and_xmp_and_keeps_pixels_and_orientation() {
        let plain = encoded(image::ImageFormat::Jpeg);
        for orientation in [1u16, 6] {
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend_from_slice(&exif_with_gps(orientation));
            let mut xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>SECRETPLACE".to_vec();
            xmp.push(0);
            let mut photo = plain[..2].to_vec();
            for (marker, body) in [
                (0xe1u8, &app1),
                (0xe1, &xmp),
                (0xfe, &b"SECRETPLACE".to_vec()),
            ] {
                photo.extend_from_slice(&[0xff, marker]);
                photo.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
                photo.extend_from_slice(body);
            }
            photo.extend_from_slice(&plain[2..]);
            assert!(has(&photo, b"SECRETPLACE"));

            let clean = strip(Mime::Jpeg, &photo).unwrap();
            assert!(!has(&clean, b"SECRETPLACE"), "orientation {orientation}");
            assert!(!has(&clean, &[0x25, 0x88]), "no GPS pointer");
            assert_eq!(pixels(&clean), pixels(&photo));
            assert_eq!(decoded_orientation(&clean), decoded_orientation(&photo));
            assert_eq!(has(&clean, b"Exif"), orientation != 1);
        }
        // A JPEG without metadata comes back byte for byte.
        assert_eq!(strip(Mime::Jpeg, &plain).unwrap(), plain);
    }

    #[test]
    fn png_loses_text_and_exif_chunks_and_keeps_pixels_and_orientation() {
        let plain = encoded(image::ImageFormat::Png);
        let chunk = |kind: &[u8; 4], data: &[u8]| {
            let mut typed = kind.to_vec();
            typed.extend_from_slice(data);
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(&typed);
            c.extend_from_slice(&crc32(&typed).to_be_bytes());
            c
        };
        // After IHDR (8 + 25 bytes).
        let mut photo = plain[..33].to_vec();
        photo.extend(chunk(b"eXIf", &exif_with_gps(8)));
        photo.extend(chunk(b"tEXt", b"Location\0SECRETPLACE"));
        photo.extend(chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0SECRETPLACE"));
        photo.extend_from_slice(&plain[33..]);
        let clean = strip(Mime::Png, &photo).unwrap();
        assert!(!has(&clean, b"SECRETPLACE"));
        assert_eq!(pixels(&clean), pixels(&photo));
        assert_eq!(
            decoded_orientation(&clean),
            image::metadata::Orientation::Rotate270
        );
        assert_eq!(strip(Mime::Png, &plain).unwrap(), plain);
    }

    #[test]
    fn webp_loses_exif_and_xmp_and_keeps_pixels_and_orientation() {
        let vp8l = {
            let plain = encoded(image::ImageFormat::WebP);
            // The lossless encoder writes a simple file: one VP8L chunk after the header.
            assert_eq!(&plain[12..16], b"VP8L");
            plain[12..].to_vec()
        };
        let sub = |kind: &[u8; 4], payload: &[u8]| {
            let mut c = kind.to_vec();
            c.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            c.extend_from_slice(payload);
            if payload.len() % 2 == 1 {
                c.push(0);
            }
            c
        };
        // VP8X: flags EXIF | XMP, canvas 40 x 30 (minus one, 24-bit little-endian).
        let mut vp8x = vec![0x0c, 0, 0, 0];
        vp8x.extend_from_slice(&[39, 0, 0, 29, 0, 0]);
        let mut body = b"WEBP".to_vec();
        body.extend(sub(b"VP8X", &vp8x));
        body.extend_from_slice(&vp8l);
        body.extend(sub(b"EXIF", &exif_with_gps(3)));
        body.extend(sub(b"XMP ", b"<x:xmpmeta>SECRETPLACE</x:xmpmeta>"));
        let mut photo = b"RIFF".to_vec();
        photo.extend_from_slice(&(body.len() as u32).to_le_bytes());
        photo.extend(body);
        let clean = strip(Mime::Webp, &photo).unwrap();
        assert!(!has(&clean, b"SECRETPLACE"));
        assert!(!has(&clean, b"XMP "));
        assert_eq!(pixels(&clean), pixels(&photo));
        assert_eq!(
            decoded_orientation(&clean),
            image::metadata::Orientation::Rotate180
        );
        assert_eq!(le32(&clean, 4), Some(clean.len() as u32 - 8));
    }

    #[test]
    fn structures_that_do_not_parse_are_refused() {
        assert_eq!(
            strip(Mime::Jpeg, b"\xff\xd8\xff\xe1\xff\xff"),
            Err(Unparsable)
        );
        assert_eq!(
            strip(Mime::Png, b"\x89PNG\r\n\x1a\n\0\0\0\x10IHDR"),
            Err(Unparsable)
        );
        assert_eq!(strip(Mime::Webp, b"RIFF\xff\0\0\0WEBP"), Err(Unparsable));
    }
}
