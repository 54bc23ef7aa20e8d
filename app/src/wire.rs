//! How a page's data crosses from the server-rendered HTML to the browser: every resource is
//! made by [`resource`], whose codec reads JSON from bytes, as server functions read their
//! answers. With leptos' default codec (JSON read from a `&str`) the wasm carried two JSON
//! decoders per type, one per reader; with one reader it carries one.

use crate::AppError;
use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON written as text and read from its bytes (the reader server functions use).
pub struct Wire;

impl<T: Serialize> Encoder<T> for Wire {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Wire {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// What a page loads: a server function's answer.
pub type Data<T> = Resource<Result<T, AppError>, Wire>;

/// A page's data: loaded by `fetch` from what `source` reads, again whenever that changes;
/// rendered on the server and handed to the browser in the page.
#[track_caller]
pub fn resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetch: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Data<T>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = Result<T, AppError>> + Send + 'static,
{
    Resource::new_with_options(source, fetch, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trips_an_answer_and_an_error() {
        let ok: Result<Vec<String>, AppError> = Ok(vec!["a\"b".into(), "中".into()]);
        let text = <Wire as Encoder<_>>::encode(&ok).expect("encode");
        assert_eq!(text, r#"{"Ok":["a\"b","中"]}"#);
        let back: Result<Vec<String>, AppError> = Wire::decode(&text).expect("decode");
        assert_eq!(back, ok);
        let err: Result<u8, AppError> = Err(AppError::new(crate::ErrorKind::NotFound, "gone"));
        let text = <Wire as Encoder<_>>::encode(&err).expect("encode");
        let back: Result<u8, AppError> = Wire::decode(&text).expect("decode");
        assert_eq!(back, err);
        assert!(<Wire as Decoder<Result<u8, AppError>>>::decode("{\"Ok\":").is_err());
    }
}
