//! Gallery, server side: keyset pages of "My images" and Explore, the image page, ratings,
//! sharing and deletion. Cards and pages as the browser reads them are `shared::gallery`.

pub use shared::gallery::*;

pub mod cache;
pub mod cursor;
pub mod records;
pub mod service;
