//! `helvetia server`'s GitHub settings: where GitHub's web pages and API are, so GitHub
//! Enterprise Server works as well as github.com.

use clap::Args;
use helvetia_server::platform::GitHubUrls;

#[derive(Debug, Args, Clone)]
pub struct GitHubArgs {
    /// GitHub's web address, where the GitHub App is created and users authorize it; for
    /// GitHub Enterprise Server, `https://HOST`.
    #[arg(long, env = "HELVETIA_GITHUB_URL", value_name = "URL", default_value = "https://github.com", value_parser = GitHubUrls::parse_base)]
    pub github_url: url::Url,
    /// GitHub's REST API; for GitHub Enterprise Server, `https://HOST/api/v3`.
    #[arg(long, env = "HELVETIA_GITHUB_API_URL", value_name = "URL", default_value = "https://api.github.com", value_parser = GitHubUrls::parse_base)]
    pub github_api_url: url::Url,
}

impl GitHubArgs {
    /// Takes the configuration file's `github_url` and `github_api_url` for the settings
    /// `defaulted` says the user left at their defaults.
    pub fn apply_file(
        &mut self,
        web: Option<String>,
        api: Option<String>,
        defaulted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        for (key, text, setting) in [
            ("github_url", web, &mut self.github_url),
            ("github_api_url", api, &mut self.github_api_url),
        ] {
            if let Some(text) = text.filter(|_| defaulted(key)) {
                *setting =
                    GitHubUrls::parse_base(&text).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
            }
        }
        Ok(())
    }

    pub fn urls(&self) -> GitHubUrls {
        GitHubUrls {
            web: self.github_url.clone(),
            api: self.github_api_url.clone(),
        }
    }
}
