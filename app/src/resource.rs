//! Page resources, with the encoding that keeps the WASM small.
//!
//! A resource's value travels from the server-rendered page to the browser as JSON. Leptos's
//! default codec reads it with `serde_json::from_str`, while server functions read their
//! answers with `serde_json::from_slice`: two readers, so every type a page loads had its
//! deserializer compiled into the WASM twice. [`Json`] writes the same JSON and reads it with
//! the byte reader server functions use, so each type's deserializer is in the bundle once
//! (issue 8: several kilobytes of the first page's budget). Make page resources with
//! [`resource`] and name their type [`PageResource`].

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON, read with serde_json's byte reader (see the module's documentation).
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// A page's resource, encoded with [`Json`].
pub type PageResource<T> = Resource<T, Json>;

/// [`Resource::new`] with the [`Json`] encoding: loads `fetcher(source())` on the server, and
/// again in the browser whenever `source` changes.
#[track_caller]
pub fn resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> PageResource<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_what_leptos_writes() {
        let value = vec![Some("a \"quoted\" ünïcode".to_owned()), None];
        let text = <Json as Encoder<_>>::encode(&value).unwrap();
        assert_eq!(text, serde_json::to_string(&value).unwrap());
        let back: Vec<Option<String>> = <Json as Decoder<_>>::decode(&text).unwrap();
        assert_eq!(back, value);
        assert!(<Json as Decoder<Vec<u8>>>::decode("not json").is_err());
    }
}
