//! What Helvetia's own objects take on disk, by kind, and what a sweep of the disk budget
//! found and freed (the sweep itself is the server's `disk` module).

/// Bytes of Helvetia's objects, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUse {
    /// Runtime images in the host engine (each image's own layers).
    pub images: u64,
    /// The registry's storage.
    pub registry: u64,
    /// Images in the builder engine (base images, and built ones not yet handed over).
    pub builder_images: u64,
    /// The builder's build cache, cache mounts included.
    pub build_cache: u64,
}

impl DiskUse {
    pub fn total(&self) -> u64 {
        self.images + self.registry + self.builder_images + self.build_cache
    }

    /// The kinds and their bytes, as `/metrics` labels them.
    pub fn by_kind(&self) -> [(&'static str, u64); 4] {
        [
            ("images", self.images),
            ("registry", self.registry),
            ("builder_images", self.builder_images),
            ("build_cache", self.build_cache),
        ]
    }
}

/// What one sweep found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// What was left afterwards.
    pub used: DiskUse,
    /// What it freed, by kind (`registry`: by the garbage collection).
    pub freed: DiskUse,
}
