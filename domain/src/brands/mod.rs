//! Brand kits, server side: storing, listing and deleting a creator's kits. The kit's rules
//! (colours, fonts, limits) are `shared::brands`.

pub use shared::brands::*;

pub mod service;
