//! The options of `services create` and `services update` for a service run from a registry
//! image: the reference and the registry login, whose password is read from standard input
//! (or asked for without echo), never from the command line.

use helvetia_api_types::ServiceInput;

/// A registry image to run instead of a repository, and the login it is pulled with.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImageArgs {
    /// Run a registry image instead of building a repository:
    /// REGISTRY[:PORT]/PATH:TAG or REGISTRY[:PORT]/PATH@sha256:DIGEST. Each deploy pulls it
    /// again (a tag is resolved to its current digest).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// The user the image is pulled as; with `services update`, `""` removes the login.
    #[arg(long, value_name = "USER")]
    pub registry_user: Option<String>,
    /// Read the registry password or token from the first line of standard input (otherwise
    /// it is asked for).
    #[arg(long, requires = "registry_user")]
    pub registry_password_stdin: bool,
}

impl ImageArgs {
    /// The image and login fields of a service's settings; the password is read here.
    pub fn login(&self) -> anyhow::Result<(Option<String>, Option<String>)> {
        let password = match self.registry_user.as_deref() {
            None | Some("") => None,
            Some(_) => Some(super::domains::read_password(self.registry_password_stdin)?),
        };
        Ok((self.registry_user.clone(), password))
    }

    /// `input` with the image and the login added.
    pub fn apply(&self, input: ServiceInput) -> anyhow::Result<ServiceInput> {
        let (registry_user, registry_password) = self.login()?;
        Ok(ServiceInput {
            image: self.image.clone(),
            registry_user,
            registry_password,
            ..input
        })
    }
}
