//! Helvetia's domain core: the vocabulary every other crate speaks and the rules that do not
//! depend on the outside world.
//!
//! Nothing here performs I/O, spawns tasks or reads the clock: callers pass the time in. That
//! keeps every rule testable with plain unit tests and lets the store, the worker and the API
//! share one definition of what a valid name, URL, branch or state change is.
//!
//! Read [`deployment`] first (the state machine a deploy walks through), then [`service`] and
//! [`git`] (what a user may configure), then [`auth`] (scopes and tokens).

pub mod account;
pub mod audit;
pub mod auth;
pub mod certificate;
pub mod checks;
pub mod commit_status;
pub mod container;
pub mod deployment;
pub mod disk;
pub mod domain;
pub mod edge;
pub mod env;
pub mod git;
pub mod image;
pub mod job;
pub mod metrics;
pub mod name;
pub mod notification;
pub mod oidc;
pub mod outbound;
pub mod preview;
pub mod project;
pub mod redact;
pub mod routing;
pub mod runtime;
pub mod scope;
pub mod security;
pub mod service;
pub mod stack;
pub mod units;
pub mod validation;
pub mod volume;
pub mod webhook;

pub use jiff::Timestamp;
