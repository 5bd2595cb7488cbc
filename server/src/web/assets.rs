//! The built bundle (`/pkg/*`: the WASM module and its chunks, the loader, the stylesheet),
//! compressed once at the strongest levels and served from memory.
//!
//! Compressing a 1.6 MB WASM module per request at a fast level would cost more CPU than the
//! rest of a page view and still send more bytes; at brotli's quality 11 it takes seconds,
//! which is fine once. At start-up a background task reads every file under the site's
//! package directory and keeps it with its brotli (q11) and gzip (level 9) forms and a
//! content hash for `ETag`. Until it is done (or for a file it does not hold), requests fall
//! through to the ordinary static-file handler, so the site works from the first second.
//! The files are not content-addressed by name, so browsers revalidate them (`no-cache` with
//! an `ETag`, answered 304) instead of keeping them for a year.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

struct Asset {
    content_type: &'static str,
    etag: HeaderValue,
    identity: Bytes,
    br: Bytes,
    gzip: Bytes,
}

/// The compressed bundle; empty until the background task has filled it.
#[derive(Clone, Default)]
pub struct Assets(Arc<OnceLock<HashMap<String, Asset>>>);

impl Assets {
    /// Starts compressing the files under `pkg_dir` (served as `/pkg/NAME`) in the
    /// background. Call inside a Tokio runtime.
    pub fn load(pkg_dir: PathBuf) -> Self {
        let assets = Assets::default();
        let slot = assets.0.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            match read_all(&pkg_dir) {
                Ok(files) => {
                    let (raw, br): (usize, usize) = files
                        .values()
                        .fold((0, 0), |(r, b), a| (r + a.identity.len(), b + a.br.len()));
                    tracing::info!(
                        files = files.len(),
                        raw_bytes = raw,
                        brotli_bytes = br,
                        ms = started.elapsed().as_millis() as u64,
                        "bundle compressed for serving"
                    );
                    let _ = slot.set(files);
                }
                Err(e) => tracing::warn!(
                    dir = %pkg_dir.display(),
                    error = %e,
                    "could not read the bundle to precompress it; serving it as files"
                ),
            }
        });
        assets
    }

    /// Whether the bundle is compressed and held.
    pub fn ready(&self) -> bool {
        self.0.get().is_some()
    }
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit('.').next()?;
    Some(match ext {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        _ => return None,
    })
}

fn read_all(dir: &Path) -> std::io::Result<HashMap<String, Asset>> {
    use std::io::Write;
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(content_type) = content_type(&name) else {
            continue;
        };
        if !entry.file_type()?.is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path())?;
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 64 * 1024, 11, 22);
            w.write_all(&bytes)?;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        let gzip = gz.finish()?;
        let etag = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(&bytes);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).map_err(std::io::Error::other)?
        };
        out.insert(
            format!("/pkg/{name}"),
            Asset {
                content_type,
                etag,
                identity: Bytes::from(bytes),
                br: Bytes::from(br),
                gzip: Bytes::from(gzip),
            },
        );
    }
    Ok(out)
}

/// The middleware: answers `/pkg/*` from memory once the bundle is held.
pub async fn serve(State(assets): State<Assets>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let Some(asset) = assets.0.get().and_then(|m| m.get(req.uri().path())) else {
        return next.run(req).await;
    };
    let h = req.headers();
    let revalidated = h
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .zip(asset.etag.to_str().ok())
        .is_some_and(|(given, ours)| given.split(',').any(|t| t.trim() == ours));
    let mut res = if revalidated {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (body, encoding) = match crate::web::pagecache::pick_encoding(h) {
            Some("br") => (asset.br.clone(), Some("br")),
            Some(_) => (asset.gzip.clone(), Some("gzip")),
            None => (asset.identity.clone(), None),
        };
        let mut res = Response::new(Body::from(body));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if let Some(enc) = encoding {
            res.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
        }
        res
    };
    let out = res.headers_mut();
    out.insert(header::ETAG, asset.etag.clone());
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bundle_files_are_taken() {
        assert_eq!(content_type("socialcraft.wasm"), Some("application/wasm"));
        assert!(
            content_type("socialcraft.js")
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(
            content_type("socialcraft.css")
                .unwrap()
                .starts_with("text/css")
        );
        assert_eq!(content_type("notes.txt"), None);
    }
}
