//! Docker
