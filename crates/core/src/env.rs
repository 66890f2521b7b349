//! Environment variables: names, values, and the `.env` format.
//!
//! A variable belongs to a project (shared by its services) or to one service (overriding a
//! project variable of the same name). A variable may be *secret* (stored encrypted, never
//! shown again) and may be needed at *build* time (then it reaches the build as a BuildKit
//! secret, never as a build argument, and is still part of the runtime environment). A *build
//! argument* is the other, explicit kind: passed as `--build-arg` to the Dockerfile's `ARG`
//! (framework variables baked into a bundle, like `NEXT_PUBLIC_*`), so it ends up in the
//! image's history — it is never secret. It is part of the runtime environment too.

use crate::validation::{FieldErrors, Invalid};

/// Longest value accepted.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most variables a project or a service may have.
pub const MAX_VARS: usize = 200;
const MAX_NAME_LEN: usize = 256;

/// Checks a variable name: `[A-Za-z_][A-Za-z0-9_]*`, and not one the platform sets.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Invalid::new(
            "must start with a letter or `_` and contain only letters, digits and `_`",
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Invalid::new(format!(
            "must be at most {MAX_NAME_LEN} characters"
        )));
    }
    if name == "PORT" || name.starts_with("HELVETIA_") {
        return Err(Invalid::new(
            "is set by the platform (PORT and HELVETIA_*) and cannot be overridden",
        ));
    }
    Ok(())
}

/// A variable's name in the OpenAPI document: exactly what [`check_name`] accepts (the
/// platform's own names excluded).
#[cfg(feature = "openapi")]
pub struct EnvName;

#[cfg(feature = "openapi")]
const ENV_NAME_PATTERN: &str = "^(?!PORT$)(?!HELVETIA_)[A-Za-z_][A-Za-z0-9_]*$";

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for EnvName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::validation::string_schema(
            "A variable name: a letter or `_`, then letters, digits and `_`; not `PORT` or \
                 `HELVETIA_*`, which the platform sets.",
            MAX_NAME_LEN,
            ENV_NAME_PATTERN,
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for EnvName {}

/// Checks a value: at most [`MAX_VALUE_BYTES`], and no NUL byte (an environment cannot
/// carry one).
pub fn check_value(value: &str) -> Result<(), Invalid> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Invalid::new(format!(
            "must be at most {} KiB",
            MAX_VALUE_BYTES / 1024
        )));
    }
    if value.contains('\0') {
        return Err(Invalid::new("must not contain NUL bytes"));
    }
    Ok(())
}

/// A variable as a client sets it. Its `Debug` hides the value, secret or not: a plain
/// variable often holds a credential too.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvVarInput {
    #[cfg_attr(feature = "openapi", schema(value_type = EnvName))]
    pub name: String,
    /// At most 64 KiB (of UTF-8), without NUL bytes.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 65536, pattern = "^[^\\u0000]*$")
    )]
    pub value: String,
    /// Stored encrypted; never shown again after it is set.
    #[serde(default)]
    pub secret: bool,
    /// Also available at build time, as a BuildKit secret (`RUN --mount=type=secret,id=NAME`).
    #[serde(default)]
    pub build: bool,
    /// Also passed to the build as a build argument (`ARG NAME` in the Dockerfile). Build
    /// arguments are kept in the image's history, so a build argument cannot be secret.
    #[serde(default)]
    pub build_arg: bool,
}

impl std::fmt::Debug for EnvVarInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so a field added later cannot be left out (or leak) unnoticed.
        let EnvVarInput {
            name,
            value: _,
            secret,
            build,
            build_arg,
        } = self;
        f.debug_struct("EnvVarInput")
            .field("name", name)
            .field("value", &"***")
            .field("secret", secret)
            .field("build", build)
            .field("build_arg", build_arg)
            .finish()
    }
}

/// Validates a set of variables as one request: every problem is reported, keyed by the
/// variable's position and name, and duplicates are refused.
pub fn check_vars(vars: &[EnvVarInput]) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    if vars.len() > MAX_VARS {
        errors.add(
            "vars",
            Invalid::new(format!("at most {MAX_VARS} variables")),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, var) in vars.iter().enumerate() {
        let field = format!("vars[{i}]");
        if let Err(e) = check_name(&var.name) {
            errors.add(
                &format!("{field}.name"),
                Invalid::new(format!("`{}` {e}", var.name)),
            );
        } else if !seen.insert(var.name.as_str()) {
            errors.add(
                &format!("{field}.name"),
                Invalid::new(format!("`{}` is set twice", var.name)),
            );
        }
        if let Err(e) = check_value(&var.value) {
            errors.add(&format!("{field}.value"), e);
        }
        if var.build_arg && (var.secret || var.build) {
            errors.add(
                &format!("{field}.build_arg"),
                Invalid::new(
                    "a build argument is kept in the image's history: it cannot be secret or \
                     also a build secret (`build`)",
                ),
            );
        }
    }
    errors.finish(|| Some(()))
}

/// Parses the `.env` format: `NAME=value` lines; `#` comments and blank lines; an optional
/// `export ` prefix; values bare (trimmed, ` #` starts a comment), in single quotes (literal)
/// or in double quotes (`\n`, `\t`, `\"`, `\\`, `\$` escapes; may span lines).
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, Invalid> {
    let mut vars = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let number = index + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (name, rest) = line
            .split_once('=')
            .ok_or_else(|| Invalid::new(format!("line {number}: expected NAME=value")))?;
        let name = name.trim();
        check_name(name).map_err(|e| Invalid::new(format!("line {number}: `{name}` {e}")))?;
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let mut body = rest[1..].to_owned();
                loop {
                    if let Some(end) = closing_quote(&body, quote) {
                        let after = body[end + 1..].trim();
                        if !after.is_empty() && !after.starts_with('#') {
                            return Err(Invalid::new(format!(
                                "line {number}: text after the closing quote"
                            )));
                        }
                        body.truncate(end);
                        break;
                    }
                    match lines.next() {
                        Some((_, next)) => {
                            body.push('\n');
                            body.push_str(next);
                        }
                        None => {
                            return Err(Invalid::new(format!(
                                "line {number}: the quote is never closed"
                            )));
                        }
                    }
                }
                if quote == '"' { unescape(&body) } else { body }
            }
            _ => match rest.find(" #") {
                Some(comment) => rest[..comment].trim_end().to_owned(),
                None => rest.trim_end().to_owned(),
            },
        };
        check_value(&value).map_err(|e| Invalid::new(format!("line {number}: {name} {e}")))?;
        vars.push((name.to_owned(), value));
    }
    Ok(vars)
}

/// The position of the closing `quote` in `body`, skipping backslash escapes inside double
/// quotes.
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other @ ('"' | '\\' | '$' | '\'')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// One line of `.env` output: a plain value, quoted when needed; a secret as a comment.
pub fn format_dotenv_line(name: &str, value: Option<&str>) -> String {
    let Some(value) = value else {
        return format!("# {name} is a secret; its value is not exported");
    };
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@,+%".contains(c));
    if plain {
        return format!("{name}={value}");
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            '"' | '\\' | '$' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c => quoted.push(c),
        }
    }
    format!("{name}=\"{quoted}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_variable_but_hides_its_value() {
        for secret in [true, false] {
            let var = EnvVarInput {
                name: "API_TOKEN".into(),
                value: "hunter2".into(),
                secret,
                build: false,
                build_arg: false,
            };
            for shown in [format!("{var:?}"), format!("{:?}", vec![var.clone()])] {
                assert!(shown.contains("API_TOKEN"), "{shown}");
                assert!(shown.contains("***"), "{shown}");
                assert!(!shown.contains("hunter2"), "{shown}");
            }
        }
    }

    #[test]
    fn names() {
        for ok in ["A", "_x", "DATABASE_URL", "a1_B2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "A B",
            "PORT",
            "HELVETIA_X",
            "É",
            &"A".repeat(300),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values() {
        assert!(check_value(&"x".repeat(MAX_VALUE_BYTES)).is_ok());
        assert!(check_value(&"x".repeat(MAX_VALUE_BYTES + 1)).is_err());
        assert!(check_value("a\0b").is_err());
    }

    #[test]
    fn parses_the_dotenv_format() {
        let text = r#"
# a comment
export PLAIN=hello world # trailing comment
SINGLE='literal $HOME \n'
DOUBLE="line one\nline \"two\" \$x"
MULTI="-----BEGIN KEY-----
abc
-----END KEY-----"
EMPTY=
"#;
        let vars = parse_dotenv(text).unwrap();
        assert_eq!(
            vars,
            vec![
                ("PLAIN".into(), "hello world".into()),
                ("SINGLE".into(), "literal $HOME \\n".into()),
                ("DOUBLE".into(), "line one\nline \"two\" $x".into()),
                (
                    "MULTI".into(),
                    "-----BEGIN KEY-----\nabc\n-----END KEY-----".into()
                ),
                ("EMPTY".into(), "".into()),
            ]
        );
    }

    #[test]
    fn refuses_malformed_dotenv() {
        for bad in [
            "NOEQUALS",
            "1BAD=x",
            "A=\"unterminated",
            "A=\"x\" trailing",
            "PORT=80",
        ] {
            assert!(parse_dotenv(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for value in [
            "simple",
            "with space",
            "quote \" and \\ and $",
            "multi\nline",
            "",
        ] {
            let line = format_dotenv_line("NAME", Some(value));
            let parsed = parse_dotenv(&line).unwrap();
            assert_eq!(
                parsed,
                vec![("NAME".to_owned(), value.to_owned())],
                "{line}"
            );
        }
        assert!(format_dotenv_line("TOKEN", None).starts_with('#'));
    }
}
