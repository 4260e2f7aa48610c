//! Google OAuth 2.0 (authorization code + PKCE, refresh, revoke, userinfo) and a Drive v3 HTTP
//! client for Ferry.
//!
//! Everything speaks plain HTTP through `reqwest`, with every endpoint configurable so the same
//! code runs against Google and against the in-repo Drive emulator. Downloads and resumable
//! uploads stream: no call buffers a whole file in memory.
//!
//! Secrets (access and refresh tokens, PKCE verifiers, resumable session URIs) never appear in
//! error messages or `Debug` output.

mod drive;
mod error;
mod oauth;
mod types;

pub use drive::{DriveClient, FOLDER_MIME_TYPE, GOOGLE_APPS_MIME_PREFIX, InvalidRootUrl};
pub use error::{DriveError, OAuthError};
pub use oauth::{
    AuthorizationRequest, GoogleEndpoints, GoogleOAuth, HttpTimeouts, OAuthClientConfig, TokenSet, UserInfo,
};
pub use types::{About, Change, ChangeList, Download, DriveFile, FileList, NewDriveFile, UploadProgress};
