//! Request extractors — JSON bodies, path and query parameters — whose every rejection is an
//! [`ApiError`] with a JSON body, instead of axum's plain-text defaults: the OpenAPI document
//! promises the error schema for every 4xx answer.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor};

use super::error::ApiError;

/// Request bodies larger than this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(mut value) = axum::Json::<serde_json::Value>::from_request(request, state)
            .await
            .map_err(json_rejection_to_error)?;
        whole_numbers_as_integers(&mut value);
        serde_path_to_error::deserialize(Strict(value))
            .map(ApiJson)
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "Failed to deserialize the JSON body into the target type: {e}"
                ))
            })
    }
}

/// JSON has one number type: `3.0` is the integer 3 to JSON Schema (and so to the OpenAPI
/// document and its clients), while serde refuses it for an integer field. Whole numbers are
/// turned into integers before the body is read into its type; a float field takes them too.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) => {
            // Within ±2^63 the conversion is exact; a whole float beyond that is out of every
            // integer field's range anyway and is left for the field's own error.
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && (-(2f64.powi(63))..2f64.powi(63)).contains(&float)
            {
                let whole = float as i64;
                *number = serde_json::Number::from(whole);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(whole_numbers_as_integers)
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::String(_) => {}
    }
}

/// A JSON value read the way the OpenAPI document describes it: a struct only from an object.
/// (serde's own readers also take an array of the fields in order, `[null, null]`, which the
/// document rightly calls invalid.) Everything else is read as `serde_json::Value` reads it.
struct Strict(serde_json::Value);

impl<'de> serde::Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            serde_json::Value::Array(items) => visitor.visit_seq(StrictSeq(items.into_iter())),
            serde_json::Value::Object(fields) => visitor.visit_map(StrictMap {
                fields: fields.into_iter(),
                value: None,
            }),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            serde_json::Value::Null => visitor.visit_none(),
            value => visitor.visit_some(Strict(value)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            serde_json::Value::Object(_) => self.deserialize_any(visitor),
            other => Err(serde::de::Error::invalid_type(
                match &other {
                    serde_json::Value::Null => Unexpected::Unit,
                    serde_json::Value::Bool(b) => Unexpected::Bool(*b),
                    serde_json::Value::Number(_) => Unexpected::Other("number"),
                    serde_json::Value::String(s) => Unexpected::Str(s),
                    serde_json::Value::Array(_) => Unexpected::Seq,
                    serde_json::Value::Object(_) => Unexpected::Map,
                },
                &visitor,
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // The bodies' enums are plain strings; nothing in them nests a struct.
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct StrictSeq(std::vec::IntoIter<serde_json::Value>);

impl<'de> SeqAccess<'de> for StrictSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Strict(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct StrictMap {
    fields: serde_json::map::IntoIter,
    value: Option<serde_json::Value>,
}

impl<'de> MapAccess<'de> for StrictMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(serde_json::Value::String(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| serde::de::Error::custom("a value without its key"))?;
        seed.deserialize(Strict(value))
    }
}

fn json_rejection_to_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::BadRequest(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(MAX_BODY_BYTES)
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// Path parameters: one that does not parse as its type (`/deployments/abc`) is a 400.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            // A route whose parameters do not fit its handler is our bug, not the client's.
            Err(rejection) if rejection.status().is_server_error() => {
                Err(ApiError::Internal(rejection.body_text()))
            }
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// Query parameters: an unknown one or one that does not parse as its type is a 400.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| ApiError::BadRequest(rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_floats_become_integers_and_others_stay() {
        let mut value = serde_json::json!({
            "a": 3.0, "b": [-2.0, 0.5], "c": {"d": 1e300}, "e": 7, "f": "3.0"
        });
        whole_numbers_as_integers(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": 3, "b": [-2, 0.5], "c": {"d": 1e300}, "e": 7, "f": "3.0"})
        );
        assert!(value["a"].is_i64());
    }

    #[test]
    fn structs_are_read_from_objects_only_at_every_depth() {
        #[derive(serde::Deserialize, Debug)]
        struct Inner {
            a: Option<i64>,
        }
        #[derive(serde::Deserialize, Debug)]
        struct Outer {
            items: Vec<Inner>,
            one: Option<Inner>,
            free: Option<serde_json::Value>,
        }
        let read = |value| serde_path_to_error::deserialize::<_, Outer>(Strict(value));
        let outer =
            read(serde_json::json!({"items": [{"a": 1}], "one": null, "free": [[1], {"b": []}]}))
                .unwrap();
        assert_eq!(outer.items[0].a, Some(1));
        assert!(outer.one.is_none());
        assert_eq!(outer.free, Some(serde_json::json!([[1], {"b": []}])));
        for bad in [
            serde_json::json!([[], null, null]),
            serde_json::json!({"items": [[1]]}),
            serde_json::json!({"items": [], "one": [1]}),
        ] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }
}
