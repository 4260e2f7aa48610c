//! Key rotation support: read sealed values page by page and swap one for its re-sealed form only if it
//! is still the value that was read (compare-and-set), so a rotation running beside live services never
//! overwrites a token refreshed or a session stored in the meantime, and can be interrupted and re-run.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::schema::{connections, job_items, oauth_states};
use crate::{Db, DbError};

/// Which sealed column a value lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `connections.access_token_sealed`
    AccessToken,
    /// `connections.refresh_token_sealed`
    RefreshToken,
    /// `job_items.upload_session_sealed` (a resumable upload's session URI)
    UploadSession,
    /// `oauth_states.pkce_verifier_sealed` (keyed by the state, not a UUID: see [`SealedValue::state`])
    PkceVerifier,
}

/// One sealed value and the row it belongs to.
#[derive(Debug, Clone)]
pub struct SealedValue {
    pub column: SealedColumn,
    /// The connection or item id (nil for OAuth states).
    pub row_id: Uuid,
    /// The OAuth state (empty for other columns).
    pub state: String,
    pub sealed: String,
}

impl Db {
    /// Up to `limit` sealed values of `column` whose row key is after `after` (UUID order; state order for
    /// OAuth states, as text in `after_state`). Pass the last value's keys to get the next page.
    pub async fn sealed_values(
        &self,
        column: SealedColumn,
        after: Uuid,
        after_state: &str,
        limit: i64,
    ) -> Result<Vec<SealedValue>, DbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<(Uuid, String, String)> = match column {
            SealedColumn::AccessToken => connections::table
                .filter(connections::id.gt(after))
                .filter(connections::access_token_sealed.is_not_null())
                .order(connections::id.asc())
                .limit(limit)
                .select((connections::id, connections::access_token_sealed))
                .load::<(Uuid, Option<String>)>(&mut conn)
                .await?
                .into_iter()
                .filter_map(|(id, value)| Some((id, String::new(), value?)))
                .collect(),
            SealedColumn::RefreshToken => connections::table
                .filter(connections::id.gt(after))
                .filter(connections::refresh_token_sealed.is_not_null())
                .order(connections::id.asc())
                .limit(limit)
                .select((connections::id, connections::refresh_token_sealed))
                .load::<(Uuid, Option<String>)>(&mut conn)
                .await?
                .into_iter()
                .filter_map(|(id, value)| Some((id, String::new(), value?)))
                .collect(),
            SealedColumn::UploadSession => {
                let items: Vec<(Uuid, Option<String>)> = job_items::table
                    .filter(job_items::id.gt(after))
                    .filter(job_items::upload_session_sealed.is_not_null())
                    .order(job_items::id.asc())
                    .limit(limit)
                    .select((job_items::id, job_items::upload_session_sealed))
                    .load(&mut conn)
                    .await?;
                items.into_iter().filter_map(|(id, value)| Some((id, String::new(), value?))).collect()
            }
            SealedColumn::PkceVerifier => oauth_states::table
                .filter(oauth_states::state.gt(after_state))
                .order(oauth_states::state.asc())
                .limit(limit)
                .select((oauth_states::state, oauth_states::pkce_verifier_sealed))
                .load::<(String, String)>(&mut conn)
                .await?
                .into_iter()
                .map(|(state, sealed)| (Uuid::nil(), state, sealed))
                .collect(),
        };
        Ok(rows.into_iter().map(|(row_id, state, sealed)| SealedValue { column, row_id, state, sealed }).collect())
    }

    /// Replaces `old.sealed` with `resealed` if the row still holds `old.sealed`; false when it changed meanwhile.
    pub async fn replace_sealed_value(&self, old: &SealedValue, resealed: &str) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let updated = match old.column {
            SealedColumn::AccessToken => {
                diesel::update(connections::table.find(old.row_id))
                    .filter(connections::access_token_sealed.eq(&old.sealed))
                    .set(connections::access_token_sealed.eq(resealed))
                    .execute(&mut conn)
                    .await?
            }
            SealedColumn::RefreshToken => {
                diesel::update(connections::table.find(old.row_id))
                    .filter(connections::refresh_token_sealed.eq(&old.sealed))
                    .set(connections::refresh_token_sealed.eq(resealed))
                    .execute(&mut conn)
                    .await?
            }
            SealedColumn::UploadSession => {
                diesel::update(job_items::table.find(old.row_id))
                    .filter(job_items::upload_session_sealed.eq(&old.sealed))
                    .set(job_items::upload_session_sealed.eq(resealed))
                    .execute(&mut conn)
                    .await?
            }
            SealedColumn::PkceVerifier => {
                diesel::update(oauth_states::table.find(&old.state))
                    .filter(oauth_states::pkce_verifier_sealed.eq(&old.sealed))
                    .set(oauth_states::pkce_verifier_sealed.eq(resealed))
                    .execute(&mut conn)
                    .await?
            }
        };
        Ok(updated == 1)
    }
}
