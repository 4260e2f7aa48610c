//! What every handler shares.

use ferry_config::Settings;
use ferry_credentials::Credentials;
use ferry_db::ApiDb;
use ferry_drive::{DriveClient, GoogleOAuth};
use ferry_storage::BlobStore;

pub struct AppState {
    pub settings: Settings,
    /// Finds the tenant (API key, OAuth state); tenant data only through [`crate::auth::Tenant::db`].
    pub db: ApiDb,
    /// Which jobs changed, for the event streams.
    pub job_changes: crate::job_changes::JobChanges,
    /// API keys looked up in the last few seconds (see [`crate::auth::API_KEY_CACHE_TTL`]).
    pub api_keys: crate::auth::ApiKeyCache,
    pub storage: BlobStore,
    pub oauth: GoogleOAuth,
    pub drive: DriveClient,
    /// Paces Drive calls per Google user, shared with the workers and the other gateways.
    pub pacer: ferry_pacer::DrivePacer,
    pub credentials: Credentials,
    /// Command names written to the outbox (the queue's routing keys).
    pub import_command: &'static str,
    pub export_command: &'static str,
    /// Keys of the documents API's download and tab tokens and share-link passwords.
    pub signers: crate::routes::documents::access::DocumentSigners,
}
