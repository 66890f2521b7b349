//! The labels Helvetia puts on engine objects. They are how reconciliation recognises its own
//! containers, images and networks, and how a person running `docker ps` can tell what is what.

/// Present, with value `true`, on everything Helvetia creates.
pub const MANAGED: &str = "io.helvetia.managed";
/// The id of the Helvetia installation that owns the object.
pub const INSTANCE: &str = "io.helvetia.instance";
pub const PROJECT: &str = "io.helvetia.project";
pub const SERVICE: &str = "io.helvetia.service";
pub const SERVICE_ID: &str = "io.helvetia.service-id";
pub const DEPLOYMENT: &str = "io.helvetia.deployment";
pub const COMMIT: &str = "io.helvetia.commit";
/// On images: a hash of everything that determines the build's output, for reuse.
pub const BUILD_KEY: &str = "io.helvetia.build-key";
