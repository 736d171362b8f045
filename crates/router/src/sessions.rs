//! Capture session tokens: what a web page uses instead of an API key. The integrator's
//! backend asks for one with the native key (`POST /v1/sessions`) and hands it to the page;
//! the page may call the guidance endpoint with it until it expires, and one liveness check,
//! which uses it up. A token is `fls1.<id>.<expiry>.<signature>`: the signature is an
//! HMAC-SHA256 of the rest under the server's session secret, so any replica that shares the
//! secret accepts it. Whether a token was used is remembered by the replica that saw it.
//!
//! A session may be bound to a reference (a sealed template) and to a nonce from the
//! integrator's backend: the token then carries both, signed with the rest, as a fourth
//! part `<context>` (base64url JSON) before the signature, so that any replica can verify
//! against it with nothing stored: `fls1.<id>.<expiry>.<context>.<signature>`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const PREFIX: &str = "fls1.";

/// Why a session token is refused: a closed set, each with its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// Not a token this server signed (or damaged).
    Invalid,
    Expired,
    /// Its one liveness check was already made.
    Used,
}

/// A token issued to a page.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct Issued {
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub expires_in: u64,
    /// The session id: the `sid` of its attestations.
    pub session_id: String,
}

/// What a session is bound to, carried inside its token.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The integrator backend's nonce, echoed in every attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The sealed template of the reference the selfie is verified against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A valid session, as its token says.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    pub expires_at: u64,
    pub binding: Binding,
}

pub struct Sessions {
    key: [u8; 32],
    ttl: Duration,
    /// Used token ids and their expiry; forgotten once expired (an expired token is refused
    /// for that reason anyway).
    used: Mutex<HashMap<String, u64>>,
}

pub fn is_token(bearer: &str) -> bool {
    bearer.starts_with(PREFIX)
}

/// A token's id, its public part (the audit trail names a session by it), unverified.
pub fn token_id(token: &str) -> Option<&str> {
    token.strip_prefix(PREFIX)?.split('.').next()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sessions {
    /// `secret`: shared by every replica; without one a random key is drawn, and tokens
    /// work only on the replica that issued them.
    pub fn new(secret: Option<&str>, ttl: Duration) -> Self {
        let key: [u8; 32] = match secret {
            Some(s) => Sha256::digest(s.as_bytes()).into(),
            None => {
                let mut k = [0u8; 32];
                k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                k
            }
        };
        Self {
            key,
            ttl,
            used: Mutex::new(HashMap::new()),
        }
    }

    fn sign(&self, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(body.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    pub fn issue(&self, binding: &Binding) -> Issued {
        let expires_at = now() + self.ttl.as_secs();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut body = format!("{PREFIX}{id}.{expires_at}");
        if *binding != Binding::default() {
            let context = serde_json::to_vec(binding).expect("a binding serialises");
            body = format!("{body}.{}", URL_SAFE_NO_PAD.encode(context));
        }
        let token = format!("{body}.{}", self.sign(&body));
        Issued {
            token,
            expires_at,
            expires_in: self.ttl.as_secs(),
            session_id: id,
        }
    }

    /// The session if this server signed its token and it has not expired or been used.
    fn valid(&self, token: &str) -> Result<Session, SessionRefusal> {
        let (body, sig) = token.rsplit_once('.').ok_or(SessionRefusal::Invalid)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SessionRefusal::Invalid)?;
        mac.verify_slice(&sig)
            .map_err(|_| SessionRefusal::Invalid)?;
        let rest = body.strip_prefix(PREFIX).ok_or(SessionRefusal::Invalid)?;
        let mut parts = rest.split('.');
        let (Some(id), Some(exp), context, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionRefusal::Invalid);
        };
        let exp: u64 = exp.parse().map_err(|_| SessionRefusal::Invalid)?;
        let binding = match context {
            None => Binding::default(),
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|j| serde_json::from_slice(&j).ok())
                .ok_or(SessionRefusal::Invalid)?,
        };
        if now() >= exp {
            return Err(SessionRefusal::Expired);
        }
        if self.used.lock().unwrap().contains_key(id) {
            return Err(SessionRefusal::Used);
        }
        Ok(Session {
            id: id.to_string(),
            expires_at: exp,
            binding,
        })
    }

    /// For guidance calls: the token stays usable.
    pub fn check(&self, token: &str) -> Result<Session, SessionRefusal> {
        self.valid(token)
    }

    /// For the liveness check: the token is used up, whatever the check's outcome.
    pub fn consume(&self, token: &str) -> Result<Session, SessionRefusal> {
        let session = self.valid(token)?;
        let mut used = self.used.lock().unwrap();
        let t = now();
        used.retain(|_, e| *e > t);
        match used.insert(session.id.clone(), session.expires_at) {
            // Another request used it between the check and here.
            Some(_) => Err(SessionRefusal::Used),
            None => Ok(session),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_single_use_signed_and_expire() {
        let s = Sessions::new(Some("shared secret"), Duration::from_secs(60));
        let t = s.issue(&Binding::default());
        assert!(is_token(&t.token));
        assert_eq!(s.check(&t.token).map(|_| ()), Ok(()));
        assert_eq!(
            s.check(&t.token).map(|_| ()),
            Ok(()),
            "guidance does not use it up"
        );
        assert_eq!(s.consume(&t.token).map(|_| ()), Ok(()));
        assert_eq!(s.consume(&t.token), Err(SessionRefusal::Used));
        assert_eq!(s.check(&t.token).map(|_| ()), Err(SessionRefusal::Used));

        // Another replica with the same secret accepts it; another secret does not.
        let t = s.issue(&Binding::default());
        let same = Sessions::new(Some("shared secret"), Duration::from_secs(60));
        assert_eq!(same.check(&t.token).map(|_| ()), Ok(()));
        let other = Sessions::new(Some("another"), Duration::from_secs(60));
        assert_eq!(
            other.check(&t.token).map(|_| ()),
            Err(SessionRefusal::Invalid)
        );

        // A changed expiry breaks the signature.
        let (body, sig) = t.token.rsplit_once('.').unwrap();
        let (head, exp) = body.rsplit_once('.').unwrap();
        let later = format!("{head}.{}.{sig}", exp.parse::<u64>().unwrap() + 3600);
        assert_eq!(s.check(&later), Err(SessionRefusal::Invalid));
        assert_eq!(s.check("fls1.garbage"), Err(SessionRefusal::Invalid));

        let expired =
            Sessions::new(Some("shared secret"), Duration::from_secs(0)).issue(&Binding::default());
        assert_eq!(s.check(&expired.token), Err(SessionRefusal::Expired));
    }

    /// A bound session carries its nonce and template to any replica with the secret, and
    /// neither can be changed without breaking the signature.
    #[test]
    fn a_binding_travels_in_the_token_and_is_signed() {
        let s = Sessions::new(Some("shared secret"), Duration::from_secs(60));
        let binding = Binding {
            nonce: Some("n-123".into()),
            template: Some("flt1.0123456789abcdef.AAAA".into()),
        };
        let t = s.issue(&binding);
        let other = Sessions::new(Some("shared secret"), Duration::from_secs(60));
        let got = other.consume(&t.token).unwrap();
        assert_eq!(
            (got.id.as_str(), &got.binding),
            (t.session_id.as_str(), &binding)
        );
        let (body, sig) = t.token.rsplit_once('.').unwrap();
        let (head, _) = body.rsplit_once('.').unwrap();
        let forged = Binding {
            nonce: Some("n-999".into()),
            ..binding
        };
        let context = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            s.check(&format!("{head}.{context}.{sig}")),
            Err(SessionRefusal::Invalid)
        );
    }
}
