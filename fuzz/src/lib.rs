//! The fuzz targets' bodies, in [`targets`]: each `fuzz_targets/<name>.rs` calls one, and
//! `server/tests/suite/fuzz_corpus.rs` runs every seed and regression input through the same
//! bodies on stable.

pub mod targets;
