//! Validation errors shared by every parser in the core.
//!
//! Parsers return [`Invalid`] for a single value; request-level validation gathers them per
//! field in [`FieldErrors`] so that a client sees every problem at once.

use std::collections::BTreeMap;

/// Why a single value was refused, phrased for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Invalid(message.into())
    }
}

/// Problems found in a request, keyed by field name.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("invalid input: {}", self.summary())]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        FieldErrors::default()
    }

    pub fn single(field: &str, error: Invalid) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, error);
        errors
    }

    pub fn add(&mut self, field: &str, error: Invalid) {
        self.0.insert(field.to_owned(), error.0);
    }

    /// Records the error of `result` under `field` and hands back its value, if any, so that a
    /// parser can keep checking the other fields.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error);
                None
            }
        }
    }

    /// Parses an optional value: `Some(None)` when absent, `Some(Some(v))` when valid, `None`
    /// (with the error recorded) when invalid.
    pub fn check_optional<T>(
        &mut self,
        field: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<Option<T>> {
        match value {
            None => Some(None),
            Some(value) => self.check(field, parse(value)).map(Some),
        }
    }

    /// Like [`FieldErrors::check`] for a nested parser that reports several fields at once.
    pub fn absorb<T>(&mut self, result: Result<T, FieldErrors>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(errors) => {
                self.0.extend(errors.0);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// `Ok(value)` when no error was recorded. `value` is only built when it is needed, since
    /// it usually unwraps the `Option`s that [`FieldErrors::check`] returned.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, FieldErrors> {
        if !self.is_empty() {
            return Err(self);
        }
        value().ok_or(self)
    }

    fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// True for characters that must never reach a process argument, a file name or a log line
/// unescaped: ASCII control characters, DEL and the Unicode line/paragraph separators.
/// The OpenAPI schema of a string its validator checks: 1 to `max_length` characters matching
/// `pattern`, which must accept exactly what the validator accepts.
#[cfg(feature = "openapi")]
pub(crate) fn string_schema(
    description: &str,
    max_length: usize,
    pattern: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(max_length))
        .pattern(Some(pattern))
        .into()
}

pub(crate) fn is_control(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}
