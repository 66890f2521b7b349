//! Deployment logs: numbered lines appended in batches, read back in pages.

use helvetia_core::Timestamp;

use crate::{Result, Store, millis, timestamp, with_pool};

pub use helvetia_core::deployment::LogLine;

#[derive(sqlx::FromRow)]
struct LogRow {
    seq: i64,
    at: i64,
    line: String,
}

/// Rows per `INSERT`: large batches amortise the round trip, and stay far below both
/// backends' limits on bound parameters (3 per row).
const ROWS_PER_INSERT: usize = 1000;

impl Store {
    /// Appends lines, numbered from `first_seq`, in as few statements as possible.
    pub async fn append_logs(
        &self,
        deployment_id: i64,
        first_seq: i64,
        lines: &[(Timestamp, String)],
    ) -> Result<()> {
        for (chunk_index, chunk) in lines.chunks(ROWS_PER_INSERT).enumerate() {
            let offset = first_seq + (chunk_index * ROWS_PER_INSERT) as i64;
            with_pool!(self, |pool| {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO deployment_logs (deployment_id, seq, at, line) ",
                );
                insert.push_values(chunk.iter().enumerate(), |mut row, (i, (at, line))| {
                    row.push_bind(deployment_id)
                        .push_bind(offset + i as i64)
                        .push_bind(millis(*at))
                        .push_bind(line.clone());
                });
                insert.build().execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Lines after `after_seq`, oldest first, at most `limit`.
    pub async fn deployment_logs(
        &self,
        deployment_id: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>> {
        let rows: Vec<LogRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, at, line FROM deployment_logs
                 WHERE deployment_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(deployment_id)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(LogLine {
                    seq: row.seq,
                    at: timestamp(row.at)?,
                    line: row.line,
                })
            })
            .collect()
    }

    /// Applies the retention policy: deletes the logs of deployments created before
    /// `older_than`, except those of each service's `keep_per_service` most recent
    /// deployments. Returns the number of lines deleted.
    pub async fn prune_logs(&self, older_than: Timestamp, keep_per_service: i64) -> Result<u64> {
        let deleted = with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM deployment_logs WHERE deployment_id IN (
                     SELECT id FROM (
                         SELECT id, created_at,
                                ROW_NUMBER() OVER (PARTITION BY service_id ORDER BY id DESC) AS recent
                         FROM deployments) AS ranked
                     WHERE created_at < $1 AND recent > $2)",
            )
            .bind(millis(older_than))
            .bind(keep_per_service)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(deleted)
    }

    /// The number of the last stored line (0 when there is none).
    pub async fn last_log_seq(&self, deployment_id: i64) -> Result<i64> {
        let last: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(seq) FROM deployment_logs WHERE deployment_id = $1")
                .bind(deployment_id)
                .fetch_one(pool)
                .await?
        });
        Ok(last.unwrap_or(0))
    }
}
