//! Ferry's small cryptographic toolbox: AES-256-GCM sealing of OAuth tokens at rest (with key ids
//! for rotation), API key generation and constant-time verification, random url-safe tokens, and HMAC-signed
//! bearer tokens with per-purpose derived keys.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Version tag of the sealed format `v1.<key_id>.<base64url(nonce || ciphertext+tag)>`.
const SEALED_VERSION: &str = "v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Prefix of every Ferry API key.
pub const API_KEY_PREFIX: &str = "fry_";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("invalid key id {0:?}: use only letters, digits, '-' and '_'")]
    InvalidKeyId(String),
    #[error("key {key_id:?} is not valid base64")]
    KeyNotBase64 { key_id: String },
    #[error("key {key_id:?} must be 32 bytes, got {len}")]
    KeyLength { key_id: String, len: usize },
    #[error("key id {0:?} is configured twice")]
    DuplicateKeyId(String),
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    #[error("sealed value uses unsupported format version {0:?}")]
    UnsupportedVersion(String),
    #[error("sealed value was made with unknown key id {0:?}")]
    UnknownKeyId(String),
    /// Wrong key, wrong associated data or tampered ciphertext: indistinguishable on purpose.
    #[error("sealed value failed authentication (tampered, wrong key or wrong associated data)")]
    Authentication,
    #[error("encryption failed (plaintext or associated data too long)")]
    Encryption,
    #[error("opened value is not UTF-8")]
    NotUtf8,
}

/// Seals and opens short secrets (OAuth access/refresh tokens) with AES-256-GCM.
///
/// New values are sealed with the current key; values sealed with previous keys still open, so
/// keys can be rotated without a flag day (see [`TokenCipher::needs_reseal`]).
#[derive(Clone)]
pub struct TokenCipher {
    current_id: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("TokenCipher").field("current_key_id", &self.current_id).field("key_ids", &ids).finish()
    }
}

impl TokenCipher {
    /// `key_b64` is base64 (standard or url-safe, padding optional) of 32 bytes.
    pub fn new(key_id: &str, key_b64: &str) -> Result<Self, CryptoError> {
        let cipher = build_cipher(key_id, key_b64)?;
        Ok(Self { current_id: key_id.to_owned(), keys: HashMap::from([(key_id.to_owned(), cipher)]) })
    }

    /// Adds keys that can still open old values but are never used to seal: `(key_id, key_b64)`.
    pub fn with_previous_keys<I, S1, S2>(mut self, keys: I) -> Result<Self, CryptoError>
    where
        I: IntoIterator<Item = (S1, S2)>,
        S1: AsRef<str>,
        S2: AsRef<str>,
    {
        for (id, key) in keys {
            let id = id.as_ref();
            let cipher = build_cipher(id, key.as_ref())?;
            if self.keys.insert(id.to_owned(), cipher).is_some() {
                return Err(CryptoError::DuplicateKeyId(id.to_owned()));
            }
        }
        Ok(self)
    }

    /// The id new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current_id
    }

    /// Encrypts `plaintext` with a fresh random 96-bit nonce. `associated_data` is authenticated
    /// but not stored: pass something that binds the value to its row (e.g. the connection id),
    /// and pass the same bytes to [`TokenCipher::open`].
    pub fn seal(&self, plaintext: &str, associated_data: &[u8]) -> Result<String, CryptoError> {
        let cipher =
            self.keys.get(&self.current_id).ok_or_else(|| CryptoError::UnknownKeyId(self.current_id.clone()))?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce_bytes);
        let nonce = Nonce::from(nonce_bytes);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: associated_data })
            .map_err(|_| CryptoError::Encryption)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_VERSION}.{}.{}", self.current_id, URL_SAFE_NO_PAD.encode(blob)))
    }

    /// Decrypts a value made by [`TokenCipher::seal`] with any configured key.
    pub fn open(&self, sealed: &str, associated_data: &[u8]) -> Result<String, CryptoError> {
        let (key_id, blob) = parse_sealed(sealed)?;
        let cipher = self.keys.get(key_id).ok_or_else(|| CryptoError::UnknownKeyId(key_id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD.decode(blob).map_err(|_| CryptoError::Malformed("payload is not base64url"))?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed("payload too short"));
        }
        let (nonce_bytes, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce_bytes).map_err(|_| CryptoError::Malformed("nonce"))?;
        let plaintext = cipher
            .decrypt(&nonce, Payload { msg: ciphertext, aad: associated_data })
            .map_err(|_| CryptoError::Authentication)?;
        String::from_utf8(plaintext).map_err(|_| CryptoError::NotUtf8)
    }

    /// True if `sealed` was made with a key other than the current one (re-seal it on next write).
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        parse_sealed(sealed).map_or(true, |(key_id, _)| key_id != self.current_id)
    }
}

/// The associated data that binds each kind of sealed value to its row and column, so a ciphertext copied
/// elsewhere does not open. One place, shared by the code that seals, opens and re-seals (key rotation).
pub mod binding {
    use std::fmt::Display;

    /// A connection's `access` or `refresh` token.
    pub fn connection_token(connection_id: &dyn Display, role: &str) -> Vec<u8> {
        format!("connection:{connection_id}:{role}").into_bytes()
    }

    /// A job item's resumable upload session URI.
    pub fn upload_session(item_id: &dyn Display) -> Vec<u8> {
        format!("item:{item_id}:upload_session").into_bytes()
    }

    /// An OAuth state's PKCE verifier.
    pub fn oauth_verifier(state: &str) -> Vec<u8> {
        format!("oauth_state:{state}").into_bytes()
    }
}

fn parse_sealed(sealed: &str) -> Result<(&str, &str), CryptoError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(version), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CryptoError::Malformed("expected v1.<key_id>.<payload>"));
    };
    if version != SEALED_VERSION {
        return Err(CryptoError::UnsupportedVersion(version.to_owned()));
    }
    Ok((key_id, blob))
}

fn build_cipher(key_id: &str, key_b64: &str) -> Result<Aes256Gcm, CryptoError> {
    if key_id.is_empty() || !key_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
        return Err(CryptoError::InvalidKeyId(key_id.to_owned()));
    }
    let bytes = decode_key(key_b64).ok_or_else(|| CryptoError::KeyNotBase64 { key_id: key_id.to_owned() })?;
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::KeyLength { key_id: key_id.to_owned(), len: bytes.len() });
    }
    Aes256Gcm::new_from_slice(&bytes)
        .map_err(|_| CryptoError::KeyLength { key_id: key_id.to_owned(), len: bytes.len() })
}

fn decode_key(raw: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let raw = raw.trim();
    GeneralPurpose::new(&base64::alphabet::STANDARD, config)
        .decode(raw)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, config).decode(raw))
        .ok()
}

/// A new API key: `fry_` followed by 43 url-safe characters (32 random bytes). Show it once, store
/// only [`hash_api_key`] of it.
pub fn generate_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token(32))
}

/// SHA-256 of the key, lowercase hex. API keys carry 256 bits of entropy, so a fast hash suffices.
pub fn hash_api_key(key: &str) -> String {
    sha256_hex(key.as_bytes())
}

/// SHA-256 of `bytes`, lowercase hex: a stable fingerprint (not a secret's protection).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compares `key` with a stored [`hash_api_key`] value in constant time.
pub fn verify_api_key(key: &str, stored_hash: &str) -> bool {
    let computed = hash_api_key(key);
    let stored = stored_hash.trim().to_ascii_lowercase();
    computed.as_bytes().ct_eq(stored.as_bytes()).into()
}

/// The first characters of a key (`fry_` + 4), safe to show in listings and logs.
pub fn api_key_display_prefix(key: &str) -> String {
    key.chars().take(API_KEY_PREFIX.len() + 4).collect()
}

/// `bytes` random bytes from the OS-seeded CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Signs and checks short bearer tokens (download tokens, tab tokens) with HMAC-SHA256. Each purpose has its own
/// key, derived from the configured secret with a distinct label, so a token made for one purpose never checks
/// for another and the secret itself signs nothing.
#[derive(Clone)]
pub struct TokenSigner {
    key: [u8; 32],
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

/// A signed token that does not check: malformed, or signed with another key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the token is malformed or its signature does not match")]
pub struct BadSignature;

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac as _;
    // HMAC accepts keys of any length.
    let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl TokenSigner {
    /// The key for `label`, derived from the configured token key (base64 of 32 bytes).
    pub fn derive(secret_b64: &str, label: &str) -> Result<Self, CryptoError> {
        let secret = decode_key(secret_b64).ok_or_else(|| CryptoError::KeyNotBase64 { key_id: label.to_owned() })?;
        Ok(TokenSigner { key: hmac_sha256(&secret, &[b"ferry.token-key.v1.", label.as_bytes()]) })
    }

    /// `base64url(claims).base64url(tag)`.
    pub fn sign(&self, claims: &[u8]) -> String {
        let tag = hmac_sha256(&self.key, &[claims]);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(claims), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claims of a token this signer made; the tag is compared in constant time.
    pub fn verify(&self, token: &str) -> Result<Vec<u8>, BadSignature> {
        let (claims, tag) = token.split_once('.').ok_or(BadSignature)?;
        let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|_| BadSignature)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| BadSignature)?;
        let expected = hmac_sha256(&self.key, &[&claims]);
        if bool::from(expected.as_slice().ct_eq(tag.as_slice())) { Ok(claims) } else { Err(BadSignature) }
    }

    /// A keyed digest of `secret` (hex), for storing a secret that is only ever compared (a share-link password).
    pub fn digest(&self, context: &str, secret: &str) -> String {
        hex::encode(hmac_sha256(&self.key, &[context.as_bytes(), b"\0", secret.as_bytes()]))
    }
}

/// Compares two strings in constant time (for their length's sake, not their content's).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_check_only_with_their_own_label() {
        let download = TokenSigner::derive(KEY_A, "download").expect("key");
        let tab = TokenSigner::derive(KEY_A, "tab").expect("key");
        let token = download.sign(b"claims");
        assert_eq!(download.verify(&token).expect("checks"), b"claims");
        assert_eq!(tab.verify(&token), Err(BadSignature));
        let (claims, _) = token.split_once('.').expect("dot");
        let forged = format!("{claims}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(download.verify(&forged), Err(BadSignature));
        assert_eq!(download.verify("no-dot"), Err(BadSignature));
        assert_ne!(download.digest("item", "pw"), download.digest("item", "pw2"));
    }

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "ZmVycnktZGV2LW9ubHktdG9rZW4ta2V5LTMyYnl0ZXM=";

    fn cipher() -> TokenCipher {
        TokenCipher::new("k1", KEY_A).expect("valid key")
    }

    #[test]
    fn round_trip() {
        let c = cipher();
        let sealed = c.seal("ya29.secret-token", b"connection:42").expect("seal");
        assert!(sealed.starts_with("v1.k1."), "{sealed}");
        assert!(!sealed.contains("secret-token"));
        assert_eq!(c.open(&sealed, b"connection:42").expect("open"), "ya29.secret-token");
        // empty plaintext works too
        let empty = c.seal("", b"").expect("seal");
        assert_eq!(c.open(&empty, b"").expect("open"), "");
    }

    #[test]
    fn nonces_are_fresh() {
        let c = cipher();
        let a = c.seal("same", b"ad").expect("seal");
        let b = c.seal("same", b"ad").expect("seal");
        assert_ne!(a, b);
    }

    #[test]
    fn tampering_is_detected() {
        let c = cipher();
        let sealed = c.seal("token", b"ad").expect("seal");
        let (head, payload) = sealed.rsplit_once('.').expect("format");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("b64");
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 0x01;
            let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(c.open(&tampered, b"ad"), Err(CryptoError::Authentication));
            bytes[i] ^= 0x01;
        }
        assert!(matches!(c.open("v1.k1.AAAA", b"ad"), Err(CryptoError::Malformed(_))));
        assert!(matches!(c.open("garbage", b"ad"), Err(CryptoError::Malformed(_))));
        assert!(matches!(c.open(&sealed.replacen("v1.", "v9.", 1), b"ad"), Err(CryptoError::UnsupportedVersion(_))));
    }

    #[test]
    fn wrong_associated_data_fails() {
        let c = cipher();
        let sealed = c.seal("token", b"row-1").expect("seal");
        assert_eq!(c.open(&sealed, b"row-2"), Err(CryptoError::Authentication));
    }

    #[test]
    fn wrong_key_and_unknown_key_id_fail() {
        let sealed = cipher().seal("token", b"ad").expect("seal");
        let other = TokenCipher::new("k2", KEY_A).expect("key");
        assert_eq!(other.open(&sealed, b"ad"), Err(CryptoError::UnknownKeyId("k1".into())));
        // same id, different key material: authentication fails
        let impostor = TokenCipher::new("k1", KEY_B).expect("key");
        assert_eq!(impostor.open(&sealed, b"ad"), Err(CryptoError::Authentication));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = TokenCipher::new("k1", KEY_A).expect("key");
        let sealed_old = old.seal("token", b"ad").expect("seal");
        let rotated =
            TokenCipher::new("k2", KEY_B).expect("key").with_previous_keys([("k1", KEY_A)]).expect("previous");
        assert_eq!(rotated.open(&sealed_old, b"ad").expect("open"), "token");
        assert!(rotated.needs_reseal(&sealed_old));
        let sealed_new = rotated.seal("token", b"ad").expect("seal");
        assert!(sealed_new.starts_with("v1.k2."));
        assert!(!rotated.needs_reseal(&sealed_new));
        assert_eq!(
            TokenCipher::new("k1", KEY_A).expect("key").with_previous_keys([("k1", KEY_B)]).err(),
            Some(CryptoError::DuplicateKeyId("k1".into()))
        );
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert_eq!(
            TokenCipher::new("k1", "c2hvcnQ=").err(),
            Some(CryptoError::KeyLength { key_id: "k1".into(), len: 5 })
        );
        assert!(matches!(TokenCipher::new("k1", "not base64!!"), Err(CryptoError::KeyNotBase64 { .. })));
        assert!(matches!(TokenCipher::new("k.1", KEY_A), Err(CryptoError::InvalidKeyId(_))));
        // url-safe and unpadded forms of the same key are accepted
        TokenCipher::new("k1", KEY_A.trim_end_matches('=')).expect("unpadded");
        let debug = format!("{:?}", cipher());
        assert!(!debug.contains(KEY_A), "{debug}");
    }

    #[test]
    fn api_key_format() {
        let key = generate_api_key();
        assert!(key.starts_with("fry_"), "{key}");
        assert_eq!(key.len(), 4 + 43, "{key}");
        let (prefix, rest) = key.split_once('_').expect("underscore");
        assert!(!prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase()));
        assert!(rest.len() >= 20);
        assert!(rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{key}");
        assert_ne!(generate_api_key(), key);
        assert_eq!(api_key_display_prefix(&key).len(), 8);
    }

    #[test]
    fn api_key_hash_and_verify() {
        let key = generate_api_key();
        let hash = hash_api_key(&key);
        assert_eq!(hash.len(), 64);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(verify_api_key(&key, &hash));
        assert!(verify_api_key(&key, &hash.to_uppercase()));
        assert!(!verify_api_key(&generate_api_key(), &hash));
        assert!(!verify_api_key(&key, ""));
        assert!(!verify_api_key(&key, &hash[..63]));
        // known vector
        assert_eq!(hash_api_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn random_tokens() {
        let t = random_token(32);
        assert_eq!(t.len(), 43);
        assert_ne!(random_token(32), t);
        assert_eq!(random_token(16).len(), 22);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    }
}
