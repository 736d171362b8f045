//! Signed session results: every answer to a capture session's liveness call carries an
//! `attestation`, a compact JWS (EdDSA, Ed25519) the integrator's backend verifies with the
//! keys at `/.well-known/jwks.json`, so that a page tampered with in the browser cannot
//! forge a result. The signing key is a PKCS#8 PEM file shared by every replica
//! (`--attestation-key`), or one generated at start (then only this process's answers
//! verify, and the server says so).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the attestation key {path}: {reason}")]
    Bad { path: String, reason: String },
}

pub struct Attestor {
    key: Ed25519KeyPair,
    kid: String,
    /// Whether the key was generated at start (not shared with other replicas).
    pub ephemeral: bool,
}

/// What a session's answer attests (the JWT claims besides iat/exp).
#[derive(Debug, Clone, Serialize)]
pub struct Claims {
    /// The session id (the token's public part).
    pub sid: String,
    /// The nonce the integrator's backend gave when it made the session.
    pub nonce: Option<String>,
    pub iat: u64,
    pub exp: u64,
    pub outcome: &'static str,
    pub live_score: Option<f32>,
    pub threshold: f32,
    pub operating_point: Option<facelive_pipeline::OperatingPoint>,
    /// With a reference bound to the session: whether the live face is that person.
    pub verified: Option<bool>,
    pub similarity: Option<f32>,
    pub pack_sha256: String,
    /// sha256 of the judged image's bytes, as received.
    pub image_sha256: String,
}

impl Claims {
    /// What a session's answer attests: its liveness verdict and, for a session bound to a
    /// reference, the match; valid for `valid_for` from now.
    pub fn of(
        session: &crate::sessions::Session,
        v: &facelive_pipeline::Verdict,
        matched: Option<&facelive_pipeline::VerifyVerdict>,
        image: &[u8],
        valid_for: std::time::Duration,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Claims {
            sid: session.id.clone(),
            nonce: session.binding.nonce.clone(),
            iat: now,
            exp: now + valid_for.as_secs(),
            outcome: matched.map_or(v.outcome.as_str(), |m| m.outcome.as_str()),
            live_score: v.live_score,
            threshold: v.threshold,
            operating_point: v.operating_point,
            verified: matched.map(|m| m.verified),
            similarity: matched.and_then(|m| m.similarity),
            pack_sha256: v.model_pack.sha256.clone(),
            image_sha256: Sha256::digest(image)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

impl Attestor {
    /// From a PKCS#8 PEM file (`openssl genpkey -algorithm ed25519`), or generated.
    pub fn new(path: Option<&Path>) -> Result<Self, KeyError> {
        let (key, ephemeral) = match path {
            Some(p) => (Self::read(p)?, false),
            None => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .expect("the system's random source");
                let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("a key just made");
                (key, true)
            }
        };
        let digest = Sha256::digest(key.public_key().as_ref());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..12]);
        Ok(Self {
            key,
            kid,
            ephemeral,
        })
    }

    fn read(path: &Path) -> Result<Ed25519KeyPair, KeyError> {
        let bad = |reason: String| KeyError::Bad {
            path: path.display().to_string(),
            reason,
        };
        let der = PrivatePkcs8KeyDer::from_pem_file(path)
            .map_err(|e| bad(format!("not a PKCS#8 PEM private key ({e})")))?;
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| bad(format!("not an Ed25519 key ({e})")))
    }

    /// The public key as a JSON Web Key Set.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.public_key().as_ref()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }]})
    }

    /// `claims` as a compact JWS (RFC 7515) signed with EdDSA (RFC 8037).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let input = format!("{}.{}", enc(header.to_string().as_bytes()), enc(&payload));
        let sig = self.key.sign(input.as_bytes());
        format!("{input}.{}", enc(sig.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    #[test]
    fn a_signature_verifies_with_the_published_key_and_not_after_a_change() {
        let a = Attestor::new(None).unwrap();
        let claims = Claims {
            sid: "s".into(),
            nonce: Some("n".into()),
            iat: 1,
            exp: 2,
            outcome: "live",
            live_score: Some(0.9),
            threshold: 0.5,
            operating_point: None,
            verified: None,
            similarity: None,
            pack_sha256: "p".into(),
            image_sha256: "i".into(),
        };
        let jws = a.sign(&claims);
        let x = a.jwks()["keys"][0]["x"].as_str().unwrap().to_string();
        let public = URL_SAFE_NO_PAD.decode(x).unwrap();
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let key = UnparsedPublicKey::new(&ED25519, &public);
        assert!(key.verify(input.as_bytes(), &sig).is_ok());
        let changed = input.replacen('e', "f", 1);
        assert!(key.verify(changed.as_bytes(), &sig).is_err());
        let other = Attestor::new(None).unwrap().jwks()["keys"][0]["x"]
            .as_str()
            .unwrap()
            .to_string();
        let other = URL_SAFE_NO_PAD.decode(other).unwrap();
        assert!(UnparsedPublicKey::new(&ED25519, &other)
            .verify(input.as_bytes(), &sig)
            .is_err());
    }
}
