//! Uploads, server side: the signed upload URL (`token`, `service`), receiving and checking
//! the file (`ingest`: streamed, hashed, sniffed, `inspect`ed, SVG sanitised in `svg`,
//! metadata stripped in `metadata`), storing it once per content (`records`), and the job
//! that makes its variants (`variants`). What the browser checks first is `shared::uploads`.

pub use shared::uploads::*;

pub mod ingest;
pub mod inspect;
pub mod metadata;
pub mod records;
pub mod service;
pub mod settings;
pub mod svg;
pub mod token;
pub mod variants;

pub use ingest::{UploadsConfig, put_upload};
