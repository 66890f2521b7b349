//! How many clients follow each service's logs at once. Every follower holds a task and,
//! for runtime output, an engine connection per container, so one service's followers are
//! capped ([`LogLimits::max_followers`](super::LogLimits)); the next one is refused rather
//! than queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The open followers per service.
#[derive(Debug)]
pub struct Followers {
    max_per_service: usize,
    open: Mutex<HashMap<i64, usize>>,
}

/// One admitted follower of a service: counted until it is dropped.
#[derive(Debug)]
pub struct Follower {
    followers: Arc<Followers>,
    service_id: i64,
}

impl Followers {
    pub fn new(max_per_service: usize) -> Arc<Followers> {
        Arc::new(Followers {
            max_per_service,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The most followers a service may have.
    pub fn max_per_service(&self) -> usize {
        self.max_per_service
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<i64, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new follower of the service, or `None` when it already has the most allowed.
    pub fn admit(self: &Arc<Self>, service_id: i64) -> Option<Follower> {
        let mut open = self.open();
        let count = open.entry(service_id).or_default();
        if *count >= self.max_per_service {
            return None;
        }
        *count += 1;
        Some(Follower {
            followers: self.clone(),
            service_id,
        })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut open = self.followers.open();
        if let Some(count) = open.get_mut(&self.service_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.service_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_admits_up_to_its_cap_and_a_leaving_follower_frees_a_place() {
        let followers = Followers::new(2);
        let first = followers.admit(1).unwrap();
        let _second = followers.admit(1).unwrap();
        assert!(followers.admit(1).is_none());
        assert!(followers.admit(2).is_some(), "the cap is per service");
        drop(first);
        assert!(followers.admit(1).is_some());
    }
}
