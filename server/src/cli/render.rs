//! `socialcraft render`: one image from the built-in renderer to a file, no database.

/// Renders one image to `out` (PNG, or WebP when its name ends in `.webp`), scaled to `width`
/// for WebP; exit code 2 with one sentence when the input or the write fails.
pub fn render(
    prompt: &str,
    style: &str,
    format: &str,
    seed: u64,
    out: &std::path::Path,
    width: Option<u32>,
) -> std::process::ExitCode {
    use app::create::validate_submission;
    use domain::create::provider::{ImageRequest, render_builtin};
    use domain::create::variants;
    let fail = |msg: String| {
        eprintln!("socialcraft render: {msg}");
        std::process::ExitCode::from(2)
    };
    let valid = match validate_submission(prompt, style, format, "1") {
        Ok(v) => v,
        Err(errors) => {
            let msgs: Vec<String> = errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            return fail(msgs.join("; "));
        }
    };
    let request = ImageRequest {
        prompt: valid.prompt,
        style: valid.style,
        format: valid.format,
        seed,
        brand: None,
    };
    let webp = out.extension().is_some_and(|e| e == "webp");
    let encoded = render_builtin(&request)
        .map_err(|e| e.detail)
        .and_then(|picture| {
            let picture = match width {
                Some(w) if webp && w < picture.width => {
                    variants::downscale(&mut Default::default(), &picture, w)
                        .map_err(|e| e.to_string())?
                }
                _ => picture,
            };
            if webp {
                variants::encode_webp(&picture)
            } else {
                variants::encode_png(&picture)
            }
            .map_err(|e| e.to_string())
        });
    match encoded
        .and_then(|bytes| std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display())))
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
