//! Sealed face templates: a reference's embedding, encrypted and authenticated under the
//! server's template key (AES-256-GCM), bound to the embedder's sha256 and a format
//! version, so that it can stand wherever a reference image can while facelive stores
//! nothing. A template is `flt1.<model>.<sealed>`: `model` is the first 16 hex digits of the
//! embedder's sha256, in the clear so that a template of another model is told apart from a
//! damaged one; `sealed` (base64url) is a 96-bit nonce and the ciphertext with its tag. The
//! full sha256 and the version are the associated data: changing either breaks the tag.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use facelive_pipeline::Embedding;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

const PREFIX: &str = "flt1";

/// Why a template is refused: a closed set, each with its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateRefusal {
    /// Not a template, damaged, or sealed under another key.
    Invalid,
    /// Sealed for another embedder (a template of another model pack).
    OtherModel,
}

pub struct Templates {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Templates {
    /// `secret`: shared by every replica; without one a random key is drawn, and templates
    /// open only in this process.
    pub fn new(secret: Option<&str>) -> Self {
        let rng = SystemRandom::new();
        let key: [u8; 32] = match secret {
            Some(s) => Sha256::digest(format!("facelive template key\n{s}").as_bytes()).into(),
            None => {
                let mut k = [0u8; 32];
                rng.fill(&mut k).expect("the system's random source");
                k
            }
        };
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key"));
        Self { key, rng }
    }

    fn aad(model_sha256: &str) -> String {
        format!("{PREFIX}\n{model_sha256}")
    }

    /// Seals `e`, made by the embedder whose file has `model_sha256`.
    pub fn seal(&self, e: &Embedding, model_sha256: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system's random source");
        let mut data: Vec<u8> = e.values().iter().flat_map(|v| v.to_le_bytes()).collect();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(model_sha256)),
                &mut data,
            )
            .expect("sealing a small buffer");
        let mut sealed = nonce.to_vec();
        sealed.extend(data);
        format!(
            "{PREFIX}.{}.{}",
            &model_sha256[..16],
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// The embedding sealed in `template`, if it was sealed here for the embedder with
    /// `model_sha256` and not changed since.
    pub fn open(&self, template: &str, model_sha256: &str) -> Result<Embedding, TemplateRefusal> {
        let mut parts = template.trim().split('.');
        let (Some(PREFIX), Some(model), Some(sealed), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TemplateRefusal::Invalid);
        };
        if model.len() != 16 || !model.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TemplateRefusal::Invalid);
        }
        if model != &model_sha256[..16] {
            return Err(TemplateRefusal::OtherModel);
        }
        let sealed = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| TemplateRefusal::Invalid)?;
        if sealed.len() < NONCE_LEN {
            return Err(TemplateRefusal::Invalid);
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| TemplateRefusal::Invalid)?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(model_sha256)), &mut data)
            .map_err(|_| TemplateRefusal::Invalid)?;
        if plain.len() % 4 != 0 {
            return Err(TemplateRefusal::Invalid);
        }
        let values = plain
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Embedding::normalised(values).ok_or(TemplateRefusal::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "85cdeb7368ed6a1e9cbaaa6f283c6b2439f1fa533c17450bfdc7f357d285d5d1";
    const OTHER: &str = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79";

    #[test]
    fn a_template_opens_only_unchanged_under_its_key_and_model() {
        let e = Embedding::normalised((0..128).map(|i| (i as f32).sin()).collect()).unwrap();
        let t = Templates::new(Some("shared"));
        let sealed = t.seal(&e, SHA);
        assert_eq!(t.open(&sealed, SHA), Ok(e.clone()));
        // Another replica with the same secret opens it; another secret does not.
        assert_eq!(
            Templates::new(Some("shared")).open(&sealed, SHA),
            Ok(e.clone())
        );
        assert_eq!(
            Templates::new(Some("other")).open(&sealed, SHA),
            Err(TemplateRefusal::Invalid)
        );
        assert_eq!(t.open(&sealed, OTHER), Err(TemplateRefusal::OtherModel));
        // One character of the sealed part changed: refused, never a different embedding.
        let mut damaged = sealed.clone().into_bytes();
        let i = damaged.len() - 10;
        damaged[i] = if damaged[i] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap();
        assert_eq!(t.open(&damaged, SHA), Err(TemplateRefusal::Invalid));
        // The model prefix rewritten to this model's does not make another's template open.
        let foreign = t.seal(&e, OTHER).replacen(&OTHER[..16], &SHA[..16], 1);
        assert_eq!(t.open(&foreign, SHA), Err(TemplateRefusal::Invalid));
        for junk in [
            "",
            "flt1",
            "flt1..",
            "flt1.zz.abc",
            "flt2.85cdeb7368ed6a1e.AAAA",
        ] {
            assert!(t.open(junk, SHA).is_err(), "{junk:?}");
        }
    }
}
