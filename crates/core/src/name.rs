//! Names of projects and services.
//!
//! Both become parts of hostnames (`<service>.<project>.<base-domain>`), Docker object names and
//! image tags, so both are DNS labels: 1–63 characters of lowercase `a-z`, `0-9` and `-`, not
//! starting or ending with `-`. Validating once at construction means no later layer has to
//! escape them.

use std::fmt;

use crate::validation::Invalid;

const MAX_LABEL_LEN: usize = 63;

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
    ($(#[$doc:meta])* $name:ident) => {
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
    ProjectName
);
dns_label_name!(
    /// A service's name: a DNS label, unique within its project.
    ServiceName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "web", "my-app-2", "0", &"a".repeat(63)] {
            assert!(ProjectName::parse(ok).is_ok(), "{ok}");
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
