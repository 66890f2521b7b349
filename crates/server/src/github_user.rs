//! GitHub's HTTP API as Helvetia uses it for a user: the authorization code's exchange for the
//! user's token (with the PKCE verifier), who the user is (`/user`, `/user/emails`,
//! `/user/orgs`) and what they reach through the App (`/user/installations…`, every page).
//!
//! Every request goes out through [`Outbound`] (GitHub's URLs are settings: GitHub Enterprise
//! may live on a private network) with redirects off. The user's token is only ever a header;
//! no URL, log line or error message carries it.

use std::time::Duration;

use helvetia_engine::outbound::{Outbound, OutboundError};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

/// How long one request to GitHub may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// GitHub's largest page.
const PER_PAGE: u32 = 100;
/// A bound on the pages followed, so a misbehaving server cannot keep a request going forever.
const MAX_PAGES: usize = 50;

/// Where GitHub is and who the App is, for the user authorization.
#[derive(Clone)]
pub struct AppCredentials {
    /// `https://github.com` or a GitHub Enterprise server's address.
    pub web_url: Url,
    /// `https://api.github.com` or `https://HOST/api/v3`.
    pub api_url: Url,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("web_url", &self.web_url.as_str())
            .field("api_url", &self.api_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// GitHub refused the authorization code (its `error_description`).
    #[error("GitHub refused the authorization: {0}")]
    Refused(String),
    #[error(transparent)]
    Destination(#[from] OutboundError),
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
    #[error("GitHub answered {status} to {path}")]
    Status {
        status: reqwest::StatusCode,
        path: String,
    },
    #[error("GitHub's answer to {path} was not understood: {detail}")]
    Unexpected { path: String, detail: String },
}

/// A user's token, fresh from the exchange.
pub struct UserToken {
    pub access_token: String,
    /// Seconds, when the App's user tokens expire.
    pub expires_in: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitHubUser {
    pub id: i64,
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitHubEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitHubOrg {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: i64,
    pub account: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub id: i64,
    pub name: String,
    pub full_name: String,
    pub private: bool,
    pub default_branch: Option<String>,
}

#[derive(Deserialize)]
struct Installations {
    installations: Vec<Installation>,
}

#[derive(Deserialize)]
struct Repositories {
    repositories: Vec<Repository>,
}

/// The token endpoint's answer: a token, or (with HTTP 200 all the same) an error.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<i64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A client for `url`'s host, connecting only to the addresses the outbound policy allowed.
async fn client(outbound: &Outbound, url: &Url) -> Result<reqwest::Client, GitHubError> {
    Ok(outbound.http_client(url, REQUEST_TIMEOUT).await?)
}

/// `base` with `path` appended (a GitHub Enterprise API lives under `/api/v3`).
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

fn unreachable(error: reqwest::Error) -> GitHubError {
    // Without the URL: nothing in it is secret today, but a message is no place for one.
    GitHubError::Unreachable(error.without_url().to_string())
}

/// Exchanges an authorization code (with its PKCE verifier) for the user's token.
pub async fn exchange_code(
    outbound: &Outbound,
    app: &AppCredentials,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<UserToken, GitHubError> {
    let url = join(&app.web_url, "/login/oauth/access_token");
    let form = [
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.as_str()),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let body = serde_urlencoded::to_string(form).map_err(|e| GitHubError::Unexpected {
        path: url.path().to_owned(),
        detail: e.to_string(),
    })?;
    let response = client(outbound, &url)
        .await?
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(unreachable)?;
    let path = url.path().to_owned();
    if !response.status().is_success() {
        return Err(GitHubError::Status {
            status: response.status(),
            path,
        });
    }
    // Read by hand: GitHub reports a bad code as HTTP 200 with an `error` field.
    let body = response.bytes().await.map_err(unreachable)?;
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|e| GitHubError::Unexpected {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    if let Some(error) = answer.error {
        return Err(GitHubError::Refused(
            answer.error_description.unwrap_or(error),
        ));
    }
    let access_token = answer.access_token.ok_or_else(|| GitHubError::Unexpected {
        path,
        detail: "no `access_token`".into(),
    })?;
    Ok(UserToken {
        access_token,
        expires_in: answer.expires_in,
    })
}

/// What the API calls made with one user's token share.
pub struct UserApi<'a> {
    outbound: &'a Outbound,
    api_url: &'a Url,
    token: &'a str,
}

impl<'a> UserApi<'a> {
    pub fn new(outbound: &'a Outbound, api_url: &'a Url, token: &'a str) -> UserApi<'a> {
        UserApi {
            outbound,
            api_url,
            token,
        }
    }

    /// One GET of `url`: the decoded body and the next page's URL (`Link: rel="next"`).
    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<(T, Option<Url>), GitHubError> {
        let path = url.path().to_owned();
        let response = client(self.outbound, &url)
            .await?
            .get(url)
            .header(ACCEPT, "application/vnd.github+json")
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(GitHubError::Status {
                status: response.status(),
                path,
            });
        }
        let next = response
            .headers()
            .get(LINK)
            .and_then(|value| value.to_str().ok())
            .and_then(next_page);
        let body = response.json().await.map_err(|e| GitHubError::Unexpected {
            path,
            detail: e.without_url().to_string(),
        })?;
        Ok((body, next))
    }

    async fn get_one<T: DeserializeOwned>(&self, path: &str) -> Result<T, GitHubError> {
        Ok(self.get(join(self.api_url, path)).await?.0)
    }

    /// Every page of `path`, each page's items picked by `items`. A next page must be on the
    /// API's own origin: the token goes nowhere else.
    async fn all_pages<P: DeserializeOwned, T>(
        &self,
        path: &str,
        items: impl Fn(P) -> Vec<T>,
    ) -> Result<Vec<T>, GitHubError> {
        let mut url = join(self.api_url, path);
        url.query_pairs_mut()
            .append_pair("per_page", &PER_PAGE.to_string());
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, next) = self.get::<P>(url).await?;
            all.extend(items(page));
            match next {
                Some(next) if next.origin() == self.api_url.origin() => url = next,
                Some(_) => {
                    return Err(GitHubError::Unexpected {
                        path: path.to_owned(),
                        detail: "the next page is on another server".into(),
                    });
                }
                None => return Ok(all),
            }
        }
        Err(GitHubError::Unexpected {
            path: path.to_owned(),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    pub async fn user(&self) -> Result<GitHubUser, GitHubError> {
        self.get_one("/user").await
    }

    pub async fn emails(&self) -> Result<Vec<GitHubEmail>, GitHubError> {
        self.get_one("/user/emails").await
    }

    pub async fn orgs(&self) -> Result<Vec<GitHubOrg>, GitHubError> {
        self.all_pages("/user/orgs", |page: Vec<GitHubOrg>| page)
            .await
    }

    pub async fn installations(&self) -> Result<Vec<Installation>, GitHubError> {
        self.all_pages("/user/installations", |page: Installations| {
            page.installations
        })
        .await
    }

    pub async fn repositories(&self, installation: i64) -> Result<Vec<Repository>, GitHubError> {
        let path = format!("/user/installations/{installation}/repositories");
        self.all_pages(&path, |page: Repositories| page.repositories)
            .await
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_page(link: &str) -> Option<Url> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| param.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| Url::parse(target).ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let link = "<https://api.github.com/user/installations/1/repositories?per_page=100&page=2>; rel=\"next\", \
                    <https://api.github.com/user/installations/1/repositories?per_page=100&page=3>; rel=\"last\"";
        assert_eq!(
            next_page(link).unwrap().as_str(),
            "https://api.github.com/user/installations/1/repositories?per_page=100&page=2"
        );
        let last = "<https://api.github.com/x?page=1>; rel=\"prev\", <https://api.github.com/x?page=1>; rel=\"first\"";
        assert_eq!(next_page(last), None);
        assert_eq!(next_page("garbage"), None);
    }

    #[test]
    fn paths_join_under_an_enterprise_prefix() {
        let enterprise = Url::parse("https://ghe.example.com/api/v3").unwrap();
        assert_eq!(
            join(&enterprise, "/user").as_str(),
            "https://ghe.example.com/api/v3/user"
        );
        let public = Url::parse("https://api.github.com").unwrap();
        assert_eq!(
            join(&public, "/user").as_str(),
            "https://api.github.com/user"
        );
    }
}
