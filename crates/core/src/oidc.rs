//! Deploys from CI without a stored secret (PyPI's "trusted publishing"): a service trusts an
//! OpenID Connect issuer — GitHub Actions' by default — for tokens whose claims name a
//! repository, a ref and optionally an environment. A CI job presents such a token instead of
//! a Helvetia credential; the server verifies it (`helvetia_server::oidc`) and the rules here
//! decide whether a trust of the service covers its claims.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::validation::Invalid;

/// The issuer of GitHub Actions' tokens, trusted when a trust names none.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// How far `exp` and `nbf` may be off: the issuer's clock and ours differ a little.
pub const LEEWAY_SECS: u64 = 60;

const MAX_ISSUER_LEN: usize = 512;
const MAX_CLAIM_LEN: usize = 255;

/// A service's trust in one issuer's tokens for given claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trust {
    pub id: i64,
    /// The issuer's URL (`iss`); its key set is found through
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The `repository` claim a token must carry (`owner/name`, compared without case).
    pub repository: String,
    /// The `repository_id` claim a token must carry: GitHub's id of the repository, bound when
    /// the trust is made for the GitHub repository the service is linked to, so a repository
    /// deleted and made again under the same name (by anyone) does not match.
    pub repository_id: Option<i64>,
    /// The `ref` claim a token must carry, e.g. `refs/heads/main`; a trailing `*` matches any
    /// ref that starts with what comes before it (`refs/tags/v*`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The `environment` claim a token must carry; `null`: any, or none.
    pub environment: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// What a trust says, as a request to create one gives it (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRules {
    pub issuer: String,
    pub repository: String,
    pub repository_id: Option<i64>,
    pub git_ref: String,
    pub environment: Option<String>,
}

/// The claims of a CI job's token that the rules look at, and what the audit log records.
/// Each is read as text whatever its JSON type (a number stays its digits, anything else is
/// left out), so an issuer's choice of types cannot make a valid token unreadable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CiClaims {
    /// GitHub: `owner/name`.
    #[serde(default, deserialize_with = "text")]
    pub repository: Option<String>,
    /// GitHub's id of the repository.
    #[serde(default, deserialize_with = "text")]
    pub repository_id: Option<String>,
    /// GitLab's name for the repository: `group/project`.
    #[serde(default, deserialize_with = "text")]
    pub project_path: Option<String>,
    /// GitHub: `refs/heads/main`; GitLab: `main`, with `ref_type`.
    #[serde(rename = "ref", default, deserialize_with = "text")]
    pub git_ref: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub ref_type: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub environment: Option<String>,
    /// The commit the job runs for.
    #[serde(default, deserialize_with = "text")]
    pub sha: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub run_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub workflow: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub actor: Option<String>,
}

/// A claim as text: a string, or a number's digits; `None` for anything else.
fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
}

impl CiClaims {
    /// The repository, by GitHub's claim or GitLab's.
    pub fn repository(&self) -> Option<&str> {
        self.repository.as_deref().or(self.project_path.as_deref())
    }

    /// The full ref: GitLab's bare branch or tag name completed by its `ref_type`.
    pub fn full_ref(&self) -> Option<String> {
        let git_ref = self.git_ref.as_deref()?;
        Some(match self.ref_type.as_deref() {
            Some("branch") if !git_ref.starts_with("refs/") => format!("refs/heads/{git_ref}"),
            Some("tag") if !git_ref.starts_with("refs/") => format!("refs/tags/{git_ref}"),
            _ => git_ref.to_owned(),
        })
    }

    /// The branch the job runs on, when its ref is one.
    pub fn branch(&self) -> Option<String> {
        self.full_ref()?
            .strip_prefix("refs/heads/")
            .map(str::to_owned)
    }

    /// How the audit log names the job: the claims the rules checked, the commit and the run.
    pub fn describe(&self) -> String {
        let mut parts = vec![];
        let named = [
            ("repository", self.repository().map(str::to_owned)),
            ("ref", self.full_ref()),
            ("environment", self.environment.clone()),
            ("sha", self.sha.clone()),
            ("workflow", self.workflow.clone()),
            ("run_id", self.run_id.clone()),
            ("actor", self.actor.clone()),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                parts.push(format!("{name}={value}"));
            }
        }
        parts.join(" ")
    }
}

/// Which claim a token carried that a trust does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub claim: &'static str,
    pub expected: String,
    /// `None`: the token has no such claim.
    pub got: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.got {
            Some(got) => write!(
                f,
                "the token's `{}` claim is `{got}`, the trust wants `{}`",
                self.claim, self.expected
            ),
            None => write!(
                f,
                "the token has no `{}` claim, the trust wants `{}`",
                self.claim, self.expected
            ),
        }
    }
}

impl Trust {
    /// Whether the trust covers a token with `claims` (its issuer and signature already
    /// checked); the first claim that differs otherwise.
    pub fn check(&self, claims: &CiClaims) -> Result<(), Mismatch> {
        let repository = claims.repository();
        if !repository.is_some_and(|r| r.eq_ignore_ascii_case(&self.repository)) {
            return Err(Mismatch {
                claim: "repository",
                expected: self.repository.clone(),
                got: repository.map(str::to_owned),
            });
        }
        let git_ref = claims.full_ref();
        if !git_ref
            .as_deref()
            .is_some_and(|r| ref_matches(&self.git_ref, r))
        {
            return Err(Mismatch {
                claim: "ref",
                expected: self.git_ref.clone(),
                got: git_ref,
            });
        }
        if let Some(id) = self.repository_id
            && claims.repository_id.as_deref() != Some(id.to_string().as_str())
        {
            return Err(Mismatch {
                claim: "repository_id",
                expected: id.to_string(),
                got: claims.repository_id.clone(),
            });
        }
        if let Some(environment) = &self.environment
            && claims.environment.as_deref() != Some(environment.as_str())
        {
            return Err(Mismatch {
                claim: "environment",
                expected: environment.clone(),
                got: claims.environment.clone(),
            });
        }
        Ok(())
    }
}

/// `rule` is the ref itself, or a prefix followed by `*`.
fn ref_matches(rule: &str, git_ref: &str) -> bool {
    match rule.strip_suffix('*') {
        Some(prefix) => git_ref.starts_with(prefix),
        None => rule == git_ref,
    }
}

/// An issuer URL: `https://` (plain `http://` only on the loopback interface: a local issuer,
/// a test), no query or fragment, no credentials. The trailing `/` is not part of it: the
/// `iss` claim names it without.
pub fn parse_issuer(text: &str) -> Result<String, Invalid> {
    if text.len() > MAX_ISSUER_LEN {
        return Err(Invalid::new(format!(
            "must be at most {MAX_ISSUER_LEN} characters"
        )));
    }
    let url = Url::parse(text).map_err(|_| Invalid::new("is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => return Err(Invalid::new("must name a host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(Invalid::new("must start with https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new("must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Invalid::new("must not have a query or fragment"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// A repository as CI systems name it: `owner/name` (GitLab: `group/subgroup/project`).
pub fn parse_repository(text: &str) -> Result<String, Invalid> {
    let segments: Vec<&str> = text.split('/').collect();
    let valid_segment = |s: &&str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if text.len() > MAX_CLAIM_LEN || segments.len() < 2 || !segments.iter().all(valid_segment) {
        return Err(Invalid::new(
            "must be `owner/name`: letters, digits, `-`, `_` and `.`",
        ));
    }
    Ok(text.to_owned())
}

/// A ref rule: `refs/` and letters, digits and `._/+@-`, with `*` only at its end (the
/// schema's pattern says the same).
pub fn parse_ref_rule(text: &str) -> Result<String, Invalid> {
    let rest = text.strip_prefix("refs/");
    let body = rest.map(|rest| rest.strip_suffix('*').unwrap_or(rest));
    let valid = body.is_some_and(|body| {
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/+@-".contains(&b))
    });
    if !valid || text.len() > MAX_CLAIM_LEN {
        return Err(Invalid::new(
            "must be a full ref such as `refs/heads/main` or `refs/tags/v*`: letters, digits \
             and `._/+@-`, `*` only at the end",
        ));
    }
    Ok(text.to_owned())
}

/// An environment's name as the CI system gives it: 1 to 255 characters, no control
/// characters.
pub fn parse_environment(text: &str) -> Result<String, Invalid> {
    let length = text.chars().count();
    if length == 0 || length > MAX_CLAIM_LEN || text.chars().any(char::is_control) {
        return Err(Invalid::new(format!(
            "must be 1 to {MAX_CLAIM_LEN} characters, no control characters"
        )));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(git_ref: &str, environment: Option<&str>) -> Trust {
        Trust {
            id: 1,
            issuer: GITHUB_ACTIONS_ISSUER.into(),
            repository: "Acme/App".into(),
            repository_id: None,
            git_ref: git_ref.into(),
            environment: environment.map(str::to_owned),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn claims(repository: &str, git_ref: &str) -> CiClaims {
        CiClaims {
            repository: Some(repository.into()),
            git_ref: Some(git_ref.into()),
            ..CiClaims::default()
        }
    }

    #[test]
    fn repository_ref_and_environment_are_each_checked() {
        let main = trust("refs/heads/main", None);
        assert_eq!(main.check(&claims("acme/app", "refs/heads/main")), Ok(()));
        let wrong = main.check(&claims("acme/other", "refs/heads/main"));
        assert_eq!(wrong.unwrap_err().claim, "repository");
        let wrong = main.check(&claims("acme/app", "refs/heads/dev"));
        assert_eq!(wrong.unwrap_err().claim, "ref");
        let production = trust("refs/heads/main", Some("production"));
        let missing = production.check(&claims("acme/app", "refs/heads/main"));
        assert_eq!(
            missing.unwrap_err().to_string(),
            "the token has no `environment` claim, the trust wants `production`"
        );
        let mut with = claims("acme/app", "refs/heads/main");
        with.environment = Some("production".into());
        assert_eq!(production.check(&with), Ok(()));
    }

    #[test]
    fn a_bound_repository_id_must_match_too() {
        let mut bound = trust("refs/heads/main", None);
        bound.repository_id = Some(42);
        let mut claims = claims("acme/app", "refs/heads/main");
        assert_eq!(bound.check(&claims).unwrap_err().claim, "repository_id");
        claims.repository_id = Some("7".into());
        assert_eq!(bound.check(&claims).unwrap_err().claim, "repository_id");
        claims.repository_id = Some("42".into());
        assert_eq!(bound.check(&claims), Ok(()));
    }

    #[test]
    fn a_trailing_star_matches_a_prefix_only() {
        let tags = trust("refs/tags/v*", None);
        assert_eq!(tags.check(&claims("acme/app", "refs/tags/v1.2")), Ok(()));
        assert!(tags.check(&claims("acme/app", "refs/heads/v1")).is_err());
        assert!(parse_ref_rule("refs/*/main").is_err());
        assert!(parse_ref_rule("main").is_err());
        assert!(parse_ref_rule("refs/tags/v*").is_ok());
    }

    #[test]
    fn claims_are_read_as_text_whatever_their_type() {
        let claims: CiClaims = serde_json::from_value(serde_json::json!({
            "repository": "acme/app", "repository_id": 42, "run_id": {"odd": true},
            "ref": "refs/heads/main", "sha": null,
        }))
        .unwrap();
        assert_eq!(claims.repository_id.as_deref(), Some("42"));
        assert_eq!((claims.run_id, claims.sha), (None, None));
    }

    #[test]
    fn gitlab_claims_name_the_repository_and_a_bare_ref() {
        let gitlab = CiClaims {
            project_path: Some("acme/app".into()),
            git_ref: Some("main".into()),
            ref_type: Some("branch".into()),
            ..CiClaims::default()
        };
        assert_eq!(trust("refs/heads/main", None).check(&gitlab), Ok(()));
        assert_eq!(gitlab.branch().as_deref(), Some("main"));
    }

    #[test]
    fn issuers_are_https_or_loopback() {
        assert_eq!(
            parse_issuer("https://token.actions.githubusercontent.com/").unwrap(),
            GITHUB_ACTIONS_ISSUER
        );
        assert!(parse_issuer("http://127.0.0.1:8080").is_ok());
        assert!(parse_issuer("http://issuer.example.com").is_err());
        assert!(parse_issuer("https://user:pw@issuer.example.com").is_err());
        assert!(parse_issuer("file:///etc/passwd").is_err());
        assert!(parse_repository("acme/app").is_ok());
        assert!(parse_repository("group/sub/project").is_ok());
        for bad in ["acme", "acme/", "/app", "acme/../x", "acme/a b"] {
            assert!(parse_repository(bad).is_err(), "{bad}");
        }
    }
}
