//! Create, server side: the providers that turn a prompt into images.

pub mod render;
