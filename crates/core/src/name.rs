//! Names of projects, services and teams.
//!
//! Both become parts of hostnames (`<service>.<project>.<base-domain>`), Docker object names and
//! image tags, so both are DNS labels: 1–63 characters of lowercase `a-z`, `0-9` and `-`, not
//! starting or ending with `-`. Validating once at construction means no later layer has to
//! escape them.

use std::fmt;

use crate::validation::Invalid;

const MAX_LABEL_LEN: usize = 63;

/// [`check_dns_label`] as a regular expression, for the OpenAPI document: a client that
/// generates names from it never sees one refused.
#[cfg(feature = "openapi")]
const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/// The OpenAPI schema of a DNS-label name.
#[cfg(feature = "openapi")]
pub(crate) fn dns_label_schema(
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    crate::validation::string_schema(description, MAX_LABEL_LEN, DNS_LABEL_PATTERN)
}

fn check_dns_label(value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(Invalid::new("must not be empty"));
    }
    if value.len() > MAX_LABEL_LEN {
        return Err(Invalid::new(format!(
            "must be at most {MAX_LABEL_LEN} characters"
        )));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Invalid::new(
            "may only contain lowercase letters a-z, digits 0-9 and '-'",
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(Invalid::new("must not start or end with '-'"));
    }
    Ok(())
}

macro_rules! dns_label_name {
    ($(#[$doc:meta])* $name:ident, $schema_description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, Invalid> {
                check_dns_label(value)?;
                Ok($name(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                dns_label_schema($schema_description)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

dns_label_name!(
    /// A project's name: a DNS label, unique on the server.
    ProjectName,
    "A project's name: a DNS label (lowercase letters, digits and `-`, 1–63 characters)."
);
dns_label_name!(
    /// A service's name: a DNS label, unique within its project.
    ServiceName,
    "A service's name: a DNS label (lowercase letters, digits and `-`, 1–63 characters)."
);
dns_label_name!(
    /// A notification channel's name: a DNS label, unique within its project.
    ChannelName,
    "A notification channel's name: a DNS label (lowercase letters, digits and `-`, 1–63 characters)."
);
dns_label_name!(
    /// A team's name: a DNS label, unique on the server.
    TeamName,
    "A team's name: a DNS label (lowercase letters, digits and `-`, 1–63 characters)."
);

impl TeamName {
    /// A valid team name made from anything (an e-mail's local part, a display name): lower-cased,
    /// every run of other characters turned into one `-`, trimmed to a label; `team` if nothing
    /// is left.
    pub fn derive(from: &str) -> TeamName {
        let mut slug = String::new();
        for c in from.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug: String = slug
            .trim_matches('-')
            .chars()
            .take(MAX_LABEL_LEN - 4)
            .collect();
        let slug = slug.trim_end_matches('-');
        TeamName(if slug.is_empty() {
            "team".into()
        } else {
            slug.to_owned()
        })
    }

    /// This name with `-n` appended, for when it is taken.
    pub fn numbered(&self, n: u32) -> TeamName {
        TeamName(format!("{}-{n}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names_derive_from_anything() {
        assert_eq!(TeamName::derive("Ada.Lovelace").as_str(), "ada-lovelace");
        assert_eq!(TeamName::derive("---").as_str(), "team");
        assert_eq!(TeamName::derive("Zoë").numbered(2).as_str(), "zo-2");
        let long = TeamName::derive(&"x".repeat(200)).numbered(999);
        assert!(TeamName::parse(long.as_str()).is_ok());
    }

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "web", "my-app-2", "0", &"a".repeat(63)] {
            assert!(ProjectName::parse(ok).is_ok(), "{ok}");
        }
    }

    /// The document's pattern and the validator agree on every probe.
    #[cfg(feature = "openapi")]
    #[test]
    fn the_documented_pattern_is_the_rule() {
        let pattern = regex::Regex::new(DNS_LABEL_PATTERN).unwrap();
        for probe in [
            "a",
            "web",
            "my-app-2",
            "0",
            "-web",
            "web-",
            "Web",
            "web_app",
            "",
            "a-",
            "wéb",
            &"a".repeat(63),
            &"a".repeat(64),
        ] {
            assert_eq!(
                pattern.is_match(probe),
                ProjectName::parse(probe).is_ok(),
                "{probe:?}"
            );
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "-web",
            "web-",
            "Web",
            "web_app",
            "web.app",
            "web app",
            "wéb",
            "web\n",
            "../etc",
            "$(id)",
            &"a".repeat(64),
        ] {
            assert!(ServiceName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
