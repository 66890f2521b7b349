//! Builds without a Dockerfile: when the repository has none at the default path, the stack
//! is detected in the build context (`core::stack`) and the Dockerfile generated for it is
//! written beside the checkout and shown in the log, line by line, so a user can commit it
//! and own it.

use std::path::Path;

use helvetia_core::deployment::FailureCause;
use helvetia_core::stack;
use helvetia_engine::checkout_files::{
    CheckoutFiles, GENERATED_DOCKERFILE, needs_generated_dockerfile, write_generated_dockerfile,
};

use super::{Deploy, Failure};

impl Deploy<'_> {
    /// The Dockerfile to build `checkout` with, relative to it: the service's, or one
    /// generated for its stack when the repository has no `Dockerfile` (a path the service
    /// names explicitly must exist).
    pub(super) fn dockerfile_for(&self, checkout: &Path) -> Result<String, Failure> {
        let settings = &self.service.settings;
        let configured = settings.dockerfile.as_str();
        if !needs_generated_dockerfile(checkout, configured) {
            return Ok(configured.to_owned());
        }
        let files = CheckoutFiles::new(checkout, settings.context.as_str());
        let detected =
            stack::detect(&files, &self.platform.settings.stack_images).map_err(|why| {
                Failure::failed(
                    FailureCause::Request,
                    format!("the repository has no Dockerfile, and {why}"),
                )
            })?;
        self.log.line(format!(
            "No Dockerfile in the repository: building it as {} ({}), with this generated \
             Dockerfile (commit it as `Dockerfile` to change it):",
            detected.kind.title(),
            detected.found.join(", ")
        ));
        for line in detected.dockerfile.lines() {
            self.log.line(format!("  {line}"));
        }
        write_generated_dockerfile(checkout, &detected.dockerfile).map_err(|e| {
            Failure::failed(
                FailureCause::Engine,
                format!("writing the generated Dockerfile: {e}"),
            )
        })?;
        Ok(GENERATED_DOCKERFILE.to_owned())
    }
}
