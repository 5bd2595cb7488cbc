//! `Leptos.toml` (read by the server at run time) must agree with the cargo-leptos metadata in
//! `Cargo.toml` (used at build time), or the server would look for a bundle that was never built.

use toml::Value;

fn read(path: &str) -> Value {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn leptos_toml_matches_the_cargo_metadata() {
    let cargo = read("Cargo.toml");
    let build = &cargo["workspace"]["metadata"]["leptos"][0];
    let runtime = read("Leptos.toml");
    let runtime = &runtime["package"]["metadata"]["leptos"];
    for key in [
        "output-name",
        "site-root",
        "site-pkg-dir",
        "site-addr",
        "reload-port",
    ] {
        assert_eq!(
            build.get(key),
            runtime.get(key),
            "`{key}` differs between Cargo.toml and Leptos.toml"
        );
        assert!(
            runtime.get(key).is_some(),
            "`{key}` missing from Leptos.toml"
        );
    }
    assert_eq!(build["output-name"].as_str(), Some(app::OUTPUT_NAME));
}

#[test]
fn leptos_toml_is_what_the_server_reads() {
    let path = format!("{}/../Leptos.toml", env!("CARGO_MANIFEST_DIR"));
    let conf = leptos_config::get_configuration(Some(&path)).expect("Leptos.toml parses");
    assert_eq!(&*conf.leptos_options.output_name, app::OUTPUT_NAME);
    assert_eq!(conf.leptos_options.site_addr.to_string(), "127.0.0.1:3000");
}
