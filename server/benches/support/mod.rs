//! What the load benches share: form encoding and signing a creator up over HTTP.

use std::path::PathBuf;
use std::process::ExitCode;

use axum::http::header;

/// A load bench's `main` once its arguments are parsed: runs `bench` on a multi-threaded
/// runtime, prints its report and writes it to `out`; a failure ends the process with its
/// message, prefixed with `name`.
pub fn run_bench(
    name: &str,
    out: Option<PathBuf>,
    bench: impl Future<Output = Result<String, String>>,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(bench) {
        Ok(report) => {
            println!("{report}");
            if let Some(out) = &out
                && let Err(e) = std::fs::write(out, &report)
            {
                eprintln!("{name}: {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs a new creator up with `email` and `password` through the server function, as the
/// browser's fetch does; returns their cookies as one `Cookie` header.
pub async fn sign_up(
    client: &reqwest::Client,
    app: &str,
    email: &str,
    password: &str,
) -> Result<String, String> {
    let res = client
        .post(format!("{app}/api/auth/sign_up"))
        .header(header::ACCEPT, "application/json")
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("email", email), ("password", password)]))
        .send()
        .await
        .map_err(|e| format!("sign up: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("sign up: {}", res.status()));
    }
    Ok(res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; "))
}

/// One page of Explore through the gallery server function, after the cursor `after` (the
/// first page without one), as JSON.
pub async fn explore_page(
    client: &reqwest::Client,
    app: &str,
    after: Option<&str>,
) -> Result<serde_json::Value, String> {
    let mut pairs = vec![("scope", "explore")];
    if let Some(a) = after {
        pairs.push(("after", a));
    }
    client
        .post(format!("{app}/api/gallery/page"))
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&pairs))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("gallery page after {after:?}: {e}"))?
        .json()
        .await
        .map_err(|e| e.to_string())
}
