//! Installation tokens kept in memory until shortly before they expire. GitHub's tokens live an
//! hour; minting one per clone would spend the App's rate limit, and a token kept to its last
//! second could expire during a clone. One mint at a time per installation: callers that need
//! the same installation's token wait for the one being minted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use super::InstallationToken;

/// A cached token is renewed once it has less than this left.
pub const RENEW_BEFORE: SignedDuration = SignedDuration::from_secs(5 * 60);

type Slot = Arc<tokio::sync::Mutex<Option<InstallationToken>>>;

#[derive(Debug, Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<i64, Slot>>,
}

impl TokenCache {
    /// `installation`'s cached token if it is good for [`RENEW_BEFORE`] after `now`, else the
    /// one `mint` makes (kept for the next callers).
    pub async fn get<F, Fut, E>(
        &self,
        installation: i64,
        now: Timestamp,
        mint: F,
    ) -> Result<InstallationToken, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<InstallationToken, E>>,
    {
        let slot = self.slot(installation);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && token.expires_at - RENEW_BEFORE > now
        {
            return Ok(token.clone());
        }
        let fresh = mint().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops `token` from the cache if it is still the one kept (GitHub or git refused it):
    /// the next [`TokenCache::get`] mints another. A token another caller already replaced
    /// stays replaced.
    pub async fn forget(&self, installation: i64, token: &str) {
        let slot = self.slot(installation);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|kept| kept.token == token) {
            *cached = None;
        }
    }

    fn slot(&self, installation: i64) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(installation).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::github::GitHubError;

    fn token(name: &str, expires_at: Timestamp) -> InstallationToken {
        InstallationToken {
            token: name.into(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_token_is_kept_until_five_minutes_before_it_expires_and_minted_once_at_a_time() {
        let cache = Arc::new(TokenCache::default());
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let hour = now + SignedDuration::from_hours(1);
        let mints = Arc::new(AtomicUsize::new(0));
        let mint = |name: &'static str| {
            let mints = mints.clone();
            move || async move {
                mints.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok::<_, GitHubError>(token(name, hour))
            }
        };
        let (a, b) = tokio::join!(cache.get(1, now, mint("a")), cache.get(1, now, mint("b")));
        assert_eq!(a.unwrap().token, "a");
        assert_eq!(
            b.unwrap().token,
            "a",
            "the second caller waits for the first mint"
        );
        assert_eq!(mints.load(Ordering::SeqCst), 1);

        let almost = hour - RENEW_BEFORE - SignedDuration::from_secs(1);
        assert_eq!(cache.get(1, almost, mint("c")).await.unwrap().token, "a");
        let late = hour - RENEW_BEFORE;
        assert_eq!(cache.get(1, late, mint("d")).await.unwrap().token, "d");
        // Another installation has its own token.
        assert_eq!(cache.get(2, now, mint("e")).await.unwrap().token, "e");
    }

    #[tokio::test]
    async fn a_refused_token_is_forgotten_unless_already_replaced() {
        let cache = TokenCache::default();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let hour = now + SignedDuration::from_hours(1);
        let ok =
            |name: &'static str| move || async move { Ok::<_, GitHubError>(token(name, hour)) };
        cache.get(1, now, ok("a")).await.unwrap();
        cache.forget(1, "other").await;
        assert_eq!(cache.get(1, now, ok("b")).await.unwrap().token, "a");
        cache.forget(1, "a").await;
        assert_eq!(cache.get(1, now, ok("b")).await.unwrap().token, "b");
        // A failed mint keeps nothing.
        cache.forget(1, "b").await;
        let failed = cache
            .get(1, now, || async {
                Err(GitHubError::Status {
                    status: 401,
                    message: "Bad credentials".into(),
                })
            })
            .await;
        assert!(failed.unwrap_err().is_unauthorized());
        assert_eq!(cache.get(1, now, ok("c")).await.unwrap().token, "c");
    }
}
