//! Placeholder: see the helper task.
