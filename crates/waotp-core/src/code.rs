//! One-time codes and the secrets around them.
//!
//! A code is a credential: generated with a CSPRNG, kept only as a keyed hash ([`CodeHash`],
//! HMAC-SHA256 under the server's [`CodeKey`], bound to its session id), compared in constant
//! time. Until the channel has handed a message over, the code also exists as a [`SealedCode`]
//! (ChaCha20-Poly1305 under a key derived from the same server secret) so that delivery survives a
//! restart; the store erases it once the message is out. A send with an `Idempotency-Key`
//! keeps one more sealed copy with the key, for 24 hours, to answer a retried request the same.

use std::fmt;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Shortest and longest code a caller may choose (15 is WhatsApp's limit for authentication codes).
pub const CUSTOM_CODE_LEN: std::ops::RangeInclusive<usize> = 4..=15;
/// Shortest and longest generated numeric code.
pub const GENERATED_CODE_LEN: std::ops::RangeInclusive<usize> = 4..=10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("otp must be 4 to 15 characters long")]
    Length,
    #[error("otp may contain only the characters 0-9, A-Z and a-z")]
    Alphabet,
    #[error("otp_length must be between 4 and 10")]
    GeneratedLength,
}

/// A one-time code in clear text. Its `Debug` never shows the code.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    /// A code chosen by the caller: 4–15 characters of `[0-9A-Za-z]`.
    pub fn parse_custom(input: &str) -> Result<Self, CodeError> {
        if !CUSTOM_CODE_LEN.contains(&input.len()) {
            // `len` is bytes: a multi-byte character makes this fail or the alphabet check fail.
            return Err(if input.bytes().all(|b| b.is_ascii_alphanumeric()) {
                CodeError::Length
            } else {
                CodeError::Alphabet
            });
        }
        if !input.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CodeError::Alphabet);
        }
        Ok(OtpCode(input.to_owned()))
    }

    /// A fresh numeric code of `len` digits from the thread-local CSPRNG (ChaCha, OS-seeded).
    pub fn generate(len: usize) -> Result<Self, CodeError> {
        if !GENERATED_CODE_LEN.contains(&len) {
            return Err(CodeError::GeneratedLength);
        }
        let mut rng = rand::rng();
        let code = (0..len).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
        Ok(OtpCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For input that may be anything (the verify route): no validation, only a wrapper, so
    /// that a wrong-shaped guess is simply a wrong guess.
    pub fn from_guess(input: &str) -> Self {
        OtpCode(input.to_owned())
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

/// The server secret that keys code hashes. Never stored in the database.
#[derive(Clone)]
pub struct CodeKey([u8; 32]);

impl CodeKey {
    /// Derives the key from secret material of any length (a config value or a key file).
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"waotp-server-secret-v1").expect("any key size");
        mac.update(secret);
        CodeKey(mac.finalize().into_bytes().into())
    }

    /// 32 random bytes, hex-encoded: what a fresh key file holds.
    pub fn generate_secret() -> String {
        random_hex_256()
    }

    fn mac(&self, domain: &[u8], session: &Uuid, data: &[u8]) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("any key size");
        mac.update(domain);
        mac.update(session.as_bytes());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The keyed hash of `code`, bound to its session so equal codes hash differently.
    pub fn hash(&self, session: &Uuid, code: &OtpCode) -> CodeHash {
        CodeHash(self.mac(b"waotp-code-v1\0", session, code.0.as_bytes()))
    }

    /// The keyed hash a reverse verification is looked up by ([`crate::reverse`]): of its
    /// whole prefilled text, [`crate::reverse::normalise`]d, so that only a message that is
    /// that text (up to case, spacing and look-alike characters) finds the session, never a
    /// message that merely contains the code. Bound to no session (an inbound message does
    /// not say which one it answers), in its own domain so it never equals a [`CodeHash`].
    pub fn reverse_lookup(&self, text: &str) -> [u8; 32] {
        self.mac(b"waotp-reverse-text-v2\0", &Uuid::nil(), crate::reverse::normalise(text).as_bytes())
    }

    /// Whether `guess` is the code behind `stored`, in constant time.
    pub fn matches(&self, stored: &CodeHash, session: &Uuid, guess: &OtpCode) -> bool {
        let computed = self.hash(session, guess);
        computed.0.ct_eq(&stored.0).into()
    }

    /// Encrypts a code for the delivery queue under ChaCha20-Poly1305 (RFC 8439), with the
    /// session id as associated data: a sealed code opens only for its own session, and any
    /// changed byte is refused. The format is [`SEAL_V2`], a random 96-bit nonce, then the
    /// ciphertext and its tag.
    pub fn seal(&self, session: &Uuid, code: &OtpCode) -> SealedCode {
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: code.0.as_bytes(), aad: session.as_bytes() })
            .expect("ChaCha20-Poly1305 encrypts any code");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_V2);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        SealedCode(out)
    }

    /// Recovers a sealed code; `None` if it was not sealed under this key for this session, or
    /// was changed since, or is not a [`SEAL_V2`] seal at all. A code sealed by a version before
    /// ChaCha20-Poly1305 (an XOR pad, no tag) is one of those: codes live at most 24 hours, so
    /// any such seal is long expired (see the upgrade notes).
    pub fn unseal(&self, session: &Uuid, sealed: &SealedCode) -> Option<OtpCode> {
        let Some((&SEAL_V2, rest)) = sealed.0.split_first() else { return None };
        if rest.len() <= NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let bytes =
            self.cipher().decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: session.as_bytes() }).ok()?;
        OtpCode::parse_custom(std::str::from_utf8(&bytes).ok()?).ok()
    }

    /// The sealing cipher, under a key derived from the server secret for this use alone.
    fn cipher(&self) -> ChaCha20Poly1305 {
        self.cipher_for(b"waotp-seal-key-v2")
    }

    fn cipher_for(&self, purpose: &[u8]) -> ChaCha20Poly1305 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("any key size");
        mac.update(purpose);
        ChaCha20Poly1305::new(&mac.finalize().into_bytes())
    }

    /// Seals a secret an app owns (its WhatsApp access token) for the database, as text:
    /// [`SEALED_SECRET_PREFIX`] and the hex of a random nonce, the ciphertext and its tag, under
    /// ChaCha20-Poly1305 with a key of its own and the owner's id as associated data. A
    /// database dump without the server secret holds no usable token, and a sealed token
    /// copied to another app does not open.
    pub fn seal_secret(&self, owner: &Uuid, secret: &str) -> String {
        self.seal_app_secret(owner.as_bytes(), secret)
    }

    /// Opens what [`CodeKey::seal_secret`] sealed for `owner`.
    pub fn open_secret(&self, owner: &Uuid, stored: &str) -> Result<String, OpenSecretError> {
        self.open_app_secret(owner.as_bytes(), stored)
    }

    /// Seals an app's callback signing secret (`whsec_…`) for the database, as
    /// [`CodeKey::seal_secret`] seals its access token, its use bound in too: a sealed access
    /// token copied over it does not open as a callback secret, nor the other way round.
    pub fn seal_callback_secret(&self, owner: &Uuid, secret: &str) -> String {
        self.seal_app_secret(&callback_secret_aad(owner), secret)
    }

    /// Opens what [`CodeKey::seal_callback_secret`] sealed for `owner`.
    pub fn open_callback_secret(&self, owner: &Uuid, stored: &str) -> Result<String, OpenSecretError> {
        self.open_app_secret(&callback_secret_aad(owner), stored)
    }

    fn seal_app_secret(&self, aad: &[u8], secret: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let sealed = self
            .cipher_for(SECRET_KEY_PURPOSE)
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad })
            .expect("ChaCha20-Poly1305 encrypts any secret");
        format!("{SEALED_SECRET_PREFIX}{}{}", hex(&nonce), hex(&sealed))
    }

    fn open_app_secret(&self, aad: &[u8], stored: &str) -> Result<String, OpenSecretError> {
        let sealed = stored.strip_prefix(SEALED_SECRET_PREFIX).ok_or(OpenSecretError::NotSealed)?;
        let bytes = unhex(sealed).filter(|b| b.len() >= NONCE_LEN + TAG_LEN).ok_or(OpenSecretError::Refused)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let opened = self
            .cipher_for(SECRET_KEY_PURPOSE)
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| OpenSecretError::Refused)?;
        String::from_utf8(opened).map_err(|_| OpenSecretError::Refused)
    }
}

/// The associated data of a sealed callback secret: the owner's id and the use.
fn callback_secret_aad(owner: &Uuid) -> Vec<u8> {
    [owner.as_bytes().as_slice(), b"\0callback-secret"].concat()
}

/// How a sealed app secret begins in the database (see [`CodeKey::seal_secret`]).
pub const SEALED_SECRET_PREFIX: &str = "sealed:v1:";
const SECRET_KEY_PURPOSE: &[u8] = b"waotp-app-secret-key-v1";

/// Why a stored app secret did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenSecretError {
    /// Stored as given, before sealing existed: waotp seals such secrets at start.
    #[error("the secret is stored as given, not sealed")]
    NotSealed,
    /// Sealed under another server secret, for another app, or changed since.
    #[error("the sealed secret does not open with this server secret (was the secret changed?)")]
    Refused,
}

/// Bytes from lowercase or uppercase hex; `None` for anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The first byte of a code sealed under ChaCha20-Poly1305 (see [`CodeKey::seal`]).
const SEAL_V2: u8 = 2;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

/// HMAC-SHA256 of a code; the only form in which a code is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeHash(pub [u8; 32]);

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(..)")
    }
}

/// A verify's guess with the key that checks it: what a store compares with a session's
/// stored [`CodeHash`] without ever holding the key or the guess's text. `Debug` shows
/// neither.
#[derive(Clone)]
pub struct Guess {
    code: OtpCode,
    key: Arc<CodeKey>,
}

impl Guess {
    pub fn new(code: OtpCode, key: Arc<CodeKey>) -> Self {
        Guess { code, key }
    }

    /// Whether this guess is the code behind `stored`, the hash of `session`'s code, in
    /// constant time.
    pub fn matches(&self, session: &Uuid, stored: &CodeHash) -> bool {
        self.key.matches(stored, session, &self.code)
    }
}

impl fmt::Debug for Guess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Guess(<redacted>)")
    }
}

/// A code encrypted for the delivery queue (see [`CodeKey::seal`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCode(pub Vec<u8>);

impl fmt::Debug for SealedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedCode(..)")
    }
}

/// A new API key: `wak_` and 64 hex characters (256 random bits).
pub fn generate_api_key() -> String {
    format!("wak_{}", random_hex_256())
}

/// 256 bits from the CSPRNG, as 64 lower-case hex digits: a key file's secret, an API key's
/// body, a dashboard login code.
pub fn random_hex_256() -> String {
    hex(&rand::rng().random::<[u8; 32]>())
}

/// SHA-256 of an API key. Keys carry 256 random bits, so a fast hash is enough: there is
/// nothing to brute-force.
pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether `presented` is the key behind `stored`, in constant time.
pub fn api_key_matches(stored: &[u8], presented: &str) -> bool {
    hash_api_key(presented).ct_eq(stored).into()
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_length_and_only_digits() {
        for len in 4..=10 {
            for _ in 0..200 {
                let c = OtpCode::generate(len).unwrap();
                assert_eq!(c.as_str().len(), len);
                assert!(c.as_str().bytes().all(|b| b.is_ascii_digit()));
            }
        }
        assert_eq!(OtpCode::generate(3), Err(CodeError::GeneratedLength));
        assert_eq!(OtpCode::generate(11), Err(CodeError::GeneratedLength));
    }

    #[test]
    fn generated_codes_use_every_digit_and_vary() {
        let mut seen = [0u32; 10];
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..2000 {
            let c = OtpCode::generate(6).unwrap();
            for b in c.as_str().bytes() {
                seen[(b - b'0') as usize] += 1;
            }
            distinct.insert(c.as_str().to_owned());
        }
        // 12,000 digits: each should appear about 1,200 times.
        assert!(seen.iter().all(|&n| n > 900 && n < 1500), "{seen:?}");
        assert!(distinct.len() > 1990);
    }

    #[test]
    fn custom_codes() {
        assert!(OtpCode::parse_custom("1234").is_ok());
        assert!(OtpCode::parse_custom("J8FpnYnPq2w3e4r").is_ok());
        assert_eq!(OtpCode::parse_custom("123"), Err(CodeError::Length));
        assert_eq!(OtpCode::parse_custom("1234567890123456"), Err(CodeError::Length));
        assert_eq!(OtpCode::parse_custom("J$FpnYnP"), Err(CodeError::Alphabet));
        assert_eq!(OtpCode::parse_custom("12 34"), Err(CodeError::Alphabet));
        assert_eq!(OtpCode::parse_custom("ééé"), Err(CodeError::Alphabet));
    }

    #[test]
    fn hash_matches_only_the_same_code_and_session() {
        let key = CodeKey::from_secret(b"secret");
        let s1 = Uuid::new_v4();
        let s2 = Uuid::new_v4();
        let code = OtpCode::parse_custom("482913").unwrap();
        let h = key.hash(&s1, &code);
        assert!(key.matches(&h, &s1, &code));
        assert!(!key.matches(&h, &s2, &code));
        assert!(!key.matches(&h, &s1, &OtpCode::from_guess("482914")));
        assert!(!key.matches(&h, &s1, &OtpCode::from_guess("")));
        let other = CodeKey::from_secret(b"another secret");
        assert!(!other.matches(&h, &s1, &code));
        assert_ne!(key.hash(&s1, &code), key.hash(&s2, &code));
    }

    #[test]
    fn a_guess_matches_only_its_own_code_and_session() {
        let key = Arc::new(CodeKey::from_secret(b"secret"));
        let (s1, s2) = (Uuid::new_v4(), Uuid::new_v4());
        let stored = key.hash(&s1, &OtpCode::parse_custom("123456").unwrap());
        assert!(Guess::new(OtpCode::from_guess("123456"), key.clone()).matches(&s1, &stored));
        assert!(!Guess::new(OtpCode::from_guess("123456"), key.clone()).matches(&s2, &stored));
        assert!(!Guess::new(OtpCode::from_guess("654321"), key.clone()).matches(&s1, &stored));
        let other = Arc::new(CodeKey::from_secret(b"another secret"));
        assert!(!Guess::new(OtpCode::from_guess("123456"), other).matches(&s1, &stored));
        assert_eq!(format!("{:?}", Guess::new(OtpCode::from_guess("123456"), key)), "Guess(<redacted>)");
    }

    #[test]
    fn seal_round_trips_and_hides_the_code() {
        let key = CodeKey::from_secret(b"secret");
        let s = Uuid::new_v4();
        let code = OtpCode::parse_custom("482913").unwrap();
        let sealed = key.seal(&s, &code);
        assert_ne!(sealed.0, b"482913");
        assert_eq!(key.unseal(&s, &sealed), Some(code.clone()));
        assert_eq!(CodeKey::from_secret(b"x").unseal(&s, &sealed), None);
        // Bound to its session, and fresh each time (a random nonce).
        assert_eq!(key.unseal(&Uuid::new_v4(), &sealed), None);
        assert_ne!(key.seal(&s, &code).0, sealed.0);
    }

    #[test]
    fn a_sealed_code_whose_bytes_changed_is_refused() {
        let key = CodeKey::from_secret(b"secret");
        let s = Uuid::new_v4();
        let sealed = key.seal(&s, &OtpCode::parse_custom("Zz9876543210abc").unwrap());
        for i in 0..sealed.0.len() {
            for bit in 0..8 {
                let mut changed = sealed.clone();
                changed.0[i] ^= 1 << bit;
                assert_eq!(key.unseal(&s, &changed), None, "byte {i}, bit {bit}");
            }
        }
        let mut cut = sealed.clone();
        cut.0.pop();
        assert_eq!(key.unseal(&s, &cut), None);
        assert_eq!(key.unseal(&s, &SealedCode(vec![SEAL_V2])), None);
        assert_eq!(key.unseal(&s, &SealedCode(Vec::new())), None);
    }

    #[test]
    fn app_secrets_seal_and_open_only_for_their_owner_and_key() {
        let key = CodeKey::from_secret(b"secret-one-0123456789");
        let (app, other) = (Uuid::new_v4(), Uuid::new_v4());
        let token = "EAAG-a-long-whatsapp-access-token";
        let sealed = key.seal_secret(&app, token);
        assert!(sealed.starts_with(SEALED_SECRET_PREFIX) && !sealed.contains(token), "{sealed}");
        assert_ne!(sealed, key.seal_secret(&app, token), "a fresh nonce each time");
        assert_eq!(key.open_secret(&app, &sealed).as_deref(), Ok(token));
        assert_eq!(key.open_secret(&other, &sealed), Err(OpenSecretError::Refused));
        let other_key = CodeKey::from_secret(b"secret-two-0123456789");
        assert_eq!(other_key.open_secret(&app, &sealed), Err(OpenSecretError::Refused));
        assert_eq!(key.open_secret(&app, token), Err(OpenSecretError::NotSealed));
        // Any changed character is refused, and so is a cut one.
        let mut changed = sealed.clone().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(key.open_secret(&app, std::str::from_utf8(&changed).unwrap()), Err(OpenSecretError::Refused));
        assert_eq!(key.open_secret(&app, &sealed[..sealed.len() - 2]), Err(OpenSecretError::Refused));
        assert_eq!(key.open_secret(&app, "sealed:v1:zz"), Err(OpenSecretError::Refused));
    }

    #[test]
    fn callback_secrets_seal_apart_from_access_tokens() {
        let key = CodeKey::from_secret(b"secret-one-0123456789");
        let (app, other) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = crate::callback::generate_secret();
        let sealed = key.seal_callback_secret(&app, &secret);
        assert!(sealed.starts_with(SEALED_SECRET_PREFIX) && !sealed.contains(&secret), "{sealed}");
        assert_eq!(key.open_callback_secret(&app, &sealed).as_deref(), Ok(secret.as_str()));
        assert_eq!(key.open_callback_secret(&other, &sealed), Err(OpenSecretError::Refused));
        assert_eq!(
            CodeKey::from_secret(b"secret-two-0123456789").open_callback_secret(&app, &sealed),
            Err(OpenSecretError::Refused)
        );
        assert_eq!(key.open_callback_secret(&app, &secret), Err(OpenSecretError::NotSealed));
        // One app's sealed token and sealed callback secret do not stand in for each other.
        assert_eq!(key.open_secret(&app, &sealed), Err(OpenSecretError::Refused));
        let token = key.seal_secret(&app, "EAAG-token");
        assert_eq!(key.open_callback_secret(&app, &token), Err(OpenSecretError::Refused));
    }

    /// What `seal` wrote before ChaCha20-Poly1305: the code XORed with an HMAC pad.
    fn sealed_the_old_way(key: &CodeKey, session: &Uuid, code: &str) -> SealedCode {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key.0).unwrap();
        mac.update(b"waotp-seal-v1\0");
        mac.update(session.as_bytes());
        let pad: [u8; 32] = mac.finalize().into_bytes().into();
        SealedCode(code.bytes().zip(pad).map(|(c, p)| c ^ p).collect())
    }

    /// Codes live at most 24 hours: one sealed the old way is long expired, and is refused like
    /// any other seal this key did not make (no panic, whatever its first byte).
    #[test]
    fn a_code_sealed_the_old_way_is_refused() {
        let key = CodeKey::from_secret(b"secret");
        let s = Uuid::new_v4();
        for code in ["4829", "482913", "Zz9876543210abc"] {
            assert_eq!(key.unseal(&s, &sealed_the_old_way(&key, &s, code)), None, "{code}");
        }
        for first in 0..=u8::MAX {
            for len in [1, 4, 15, 1 + NONCE_LEN + TAG_LEN] {
                let mut bytes = vec![0u8; len];
                bytes[0] = first;
                assert_eq!(key.unseal(&s, &SealedCode(bytes)), None, "first byte {first}, length {len}");
            }
        }
    }

    #[test]
    fn api_keys() {
        let k = generate_api_key();
        assert!(k.starts_with("wak_") && k.len() == 68);
        assert_ne!(k, generate_api_key());
        let h = hash_api_key(&k);
        assert!(api_key_matches(&h, &k));
        assert!(!api_key_matches(&h, "wak_0"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let code = OtpCode::parse_custom("482913").unwrap();
        assert!(!format!("{code:?}").contains("482913"));
        assert_eq!(format!("{:?}", CodeKey::from_secret(b"s")), "CodeKey(<redacted>)");
    }
}
