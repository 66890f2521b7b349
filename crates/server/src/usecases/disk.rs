//! The disk budget seen and swept from the API: instance administrators only, since the
//! figures are the whole installation's.

use helvetia_api_types::{DiskBytes, DiskView};
use helvetia_core::auth::Caller;

use super::{App, Result, UseCaseError};
use crate::disk::{self, DiskUse};

fn instance_admin(caller: &Caller) -> Result<()> {
    if caller.is_instance_admin() {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden(
            "the disk budget is the whole installation's: it is for instance administrators".into(),
        ))
    }
}

fn bytes(used: &DiskUse) -> DiskBytes {
    DiskBytes {
        images: used.images,
        registry: used.registry,
        builder_images: used.builder_images,
        build_cache: used.build_cache,
        total: used.total(),
    }
}

/// The budget and the last sweep's figures.
pub fn show(app: &App, caller: &Caller) -> Result<DiskView> {
    instance_admin(caller)?;
    let last = *app
        .platform
        .last_sweep
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(DiskView {
        budget_bytes: app.platform.settings.disk_budget,
        swept_at: last.map(|(at, _)| at),
        used: last.map(|(_, sweep)| bytes(&sweep.used)),
        freed: last.map(|(_, sweep)| bytes(&sweep.freed)),
    })
}

/// Sweeps now (as the supervised task does) and answers the figures.
pub async fn sweep(app: &App, caller: &Caller) -> Result<DiskView> {
    instance_admin(caller)?;
    let swept = disk::sweep(&app.platform)
        .await
        .map_err(|error| UseCaseError::Internal(format!("the disk sweep failed: {error}")))?;
    disk::report(&app.platform, &swept);
    show(app, caller)
}
