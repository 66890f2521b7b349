//! API tests: the whole router on a real SQLite store, driven with `oneshot` requests.

#![allow(clippy::unwrap_used)]

mod api;
mod authorization;
mod browser;
mod certificates;
mod dashboard;
mod dashboard_settings;
mod devices;
mod disk;
mod domains;
mod edge;
mod env;
mod github;
mod github_checks;
mod github_hooks;
mod github_services;
mod github_signin;
mod harness;
mod hook_races;
mod hooks;
mod images;
mod logs;
mod notifications;
mod oidc;
mod previews;
mod privileges;
mod refusals;
mod rotation;
mod services;
mod sessions;
mod signin;
mod supervisor;
mod teams;
mod tokens;
