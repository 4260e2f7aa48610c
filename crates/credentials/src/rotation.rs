//! Key rotation (`ferryctl keys rotate`): re-seal every stored token, upload session and PKCE verifier under
//! the current `crypto.token_key`, opening them with whichever configured key sealed them.
//!
//! Each value is swapped only if it is still the one read (a concurrent refresh wins), values already under
//! the current key are left alone, and every row commits on its own: running it twice, or again after an
//! interruption, finishes the job. Once it reports nothing left under an old key, that key can be removed.

use ferry_core::{ConnectionId, ItemId};
use ferry_crypto::{TokenCipher, binding};
use ferry_db::resealing::{SealedColumn, SealedValue};
use ferry_db::{Db, DbError};
use uuid::Uuid;

const PAGE: i64 = 200;

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationReport {
    /// Values re-sealed under the current key.
    pub resealed: u64,
    /// Values already under the current key.
    pub current: u64,
    /// Values that changed while being re-sealed (the writer sealed them with the current key already).
    pub changed_meanwhile: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// A value sealed with a key that is not configured (add it to `crypto.previous_token_keys`), or damaged.
    #[error("{column} of {row} cannot be opened: {source}")]
    Open {
        column: &'static str,
        row: String,
        #[source]
        source: ferry_crypto::CryptoError,
    },
    #[error("re-sealing failed: {0}")]
    Seal(#[source] ferry_crypto::CryptoError),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn column_name(column: SealedColumn) -> &'static str {
    match column {
        SealedColumn::AccessToken => "connections.access_token_sealed",
        SealedColumn::RefreshToken => "connections.refresh_token_sealed",
        SealedColumn::UploadSession => "job_items.upload_session_sealed",
        SealedColumn::PkceVerifier => "oauth_states.pkce_verifier_sealed",
    }
}

fn associated_data(value: &SealedValue) -> Vec<u8> {
    match value.column {
        SealedColumn::AccessToken => binding::connection_token(&ConnectionId(value.row_id), "access"),
        SealedColumn::RefreshToken => binding::connection_token(&ConnectionId(value.row_id), "refresh"),
        SealedColumn::UploadSession => binding::upload_session(&ItemId(value.row_id)),
        SealedColumn::PkceVerifier => binding::oauth_verifier(&value.state),
    }
}

/// Re-seals everything not yet under `cipher`'s current key.
pub async fn reseal_all(db: &Db, cipher: &TokenCipher) -> Result<RotationReport, RotationError> {
    let mut report = RotationReport::default();
    for column in
        [SealedColumn::AccessToken, SealedColumn::RefreshToken, SealedColumn::UploadSession, SealedColumn::PkceVerifier]
    {
        let (mut after, mut after_state) = (Uuid::nil(), String::new());
        loop {
            let page = db.sealed_values(column, after, &after_state, PAGE).await?;
            let Some(last) = page.last() else { break };
            (after, after_state) = (last.row_id, last.state.clone());
            for value in &page {
                if !cipher.needs_reseal(&value.sealed) {
                    report.current += 1;
                    continue;
                }
                let aad = associated_data(value);
                let plain = cipher.open(&value.sealed, &aad).map_err(|source| RotationError::Open {
                    column: column_name(column),
                    row: if value.state.is_empty() { value.row_id.to_string() } else { "an OAuth state".to_owned() },
                    source,
                })?;
                let resealed = cipher.seal(&plain, &aad).map_err(RotationError::Seal)?;
                if db.replace_sealed_value(value, &resealed).await? {
                    report.resealed += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
    }
    Ok(report)
}
