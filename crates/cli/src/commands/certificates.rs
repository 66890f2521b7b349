//! `helvetia certificates list`: every certificate of the installation — custom domains',
//! generated hostnames', wildcards', the public URL's — with its state (instance
//! administrators).

use clap::Subcommand;
use helvetia_api_types::CertificateView;

use super::domains;
use crate::GlobalArgs;
use crate::client::Client;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum CertificatesCommand {
    /// Every certificate with what it is for, its state and expiry, or the CA's reason.
    List,
}

pub async fn run(command: CertificatesCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::from_args(global)?;
    match command {
        CertificatesCommand::List => {
            let listed = client
                .get::<Vec<CertificateView>>("/api/v1/certificates")
                .await?;
            if global.json {
                return output::json(&listed.json);
            }
            output::table(
                ["KIND", "NAMES", "CERTIFICATE", "EXPIRES", "REASON"],
                listed.body.iter().map(|view| {
                    let certificate = Some(&view.certificate);
                    [
                        view.kind.as_str().to_owned(),
                        view.names.join(" "),
                        domains::certificate(certificate),
                        domains::expires(certificate),
                        domains::reason(certificate),
                    ]
                }),
            );
        }
    }
    Ok(())
}
