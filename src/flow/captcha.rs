//! The image captcha of the sign-in page, asked for once an account or an address has failed
//! `sign_in.captcha_after` times. A challenge is a random id whose answer is a keyed digest of
//! it (so no answer is stored anywhere), drawn as an image embedded in the page as a data URI,
//! and a one-time token for the id: bound to the sign-in flow, valid for ten minutes, and spent
//! by the first answer, right or wrong. Answers are compared ignoring case.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::crypto::secret::{DigestKey, TokenHash, random_token};
use crate::i18n::Text;
use crate::store::tokens::{self, NewOneTimeToken};
use crate::tenant::TenantId;
use crate::web::error::PageError;

const KIND: &str = "captcha";
const LIFETIME: i64 = 600;
const LENGTH: u32 = 5;
/// Characters that do not look alike in the image (no 0/o, 1/l/i).
const ALPHABET: &str = "abcdefghkmnpqrstuvwxyz23456789";
/// An answer longer than this is not compared.
pub const MAX_ANSWER: usize = 16;

/// A challenge to show: its id (a hidden form field) and its image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Challenge {
    pub id: String,
    pub image: String,
}

/// Challenges one address may have drawn per `sign_in.lockout_duration`: drawing costs CPU and
/// a row, and nobody needs more images than this to sign in.
pub const MAX_PER_ADDRESS: u32 = 60;

/// A new challenge for the sign-in flow `flow_id`, requested from `address` (a key of
/// [`App::captchas_drawn`]); refused once the address has drawn [`MAX_PER_ADDRESS`].
pub async fn issue(
    app: &App,
    tenant: &TenantId,
    flow_id: &str,
    address: &str,
) -> Result<Challenge, PageError> {
    let now = app.now();
    if app.captchas_drawn.blocked_for(address, now).is_some() {
        return Err(PageError::Refused(Text::new("login.throttled")));
    }
    app.captchas_drawn.record_failure(address, now);
    let id = random_token(16);
    let text = answer(app, &id);
    let png = tokio::task::spawn_blocking(move || draw(&text))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| PageError::Internal("the captcha image could not be drawn".into()))?;
    let (t, hash, flow) = (tenant.clone(), TokenHash::of(&id), flow_id.to_string());
    let payload = serde_json::json!({});
    app.store
        .run(move |c| {
            tokens::insert(
                c,
                &t,
                NewOneTimeToken {
                    hash: &hash,
                    kind: KIND,
                    subject: &flow,
                    payload,
                    expires_at: now.plus(LIFETIME),
                },
                now,
            )
        })
        .await?;
    Ok(Challenge {
        id,
        image: format!("data:image/png;base64,{}", STANDARD.encode(png)),
    })
}

/// Whether `answer` solves challenge `id` of flow `flow_id`. The challenge is spent either way,
/// so each image allows one guess.
pub async fn solve(
    app: &App,
    tenant: &TenantId,
    flow_id: &str,
    id: Option<&str>,
    given: Option<&str>,
) -> Result<bool, PageError> {
    let (Some(id), Some(given)) = (id, given) else {
        return Ok(false);
    };
    if id.len() > 64 || given.len() > MAX_ANSWER {
        return Ok(false);
    }
    let (t, hash, now) = (tenant.clone(), TokenHash::of(id), app.now());
    let Some(token) = app
        .store
        .run(move |c| tokens::consume(c, &t, KIND, &hash, now))
        .await?
    else {
        return Ok(false);
    };
    let expected = answer(app, id);
    let given = given.trim().to_lowercase();
    Ok(token.subject == flow_id && bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// The answer to challenge `id`: characters of [`ALPHABET`] picked by a keyed digest of the id,
/// so only this server knows it and it needs no storage.
pub fn answer(app: &App, id: &str) -> String {
    answer_with(&app.captcha_key, id)
}

/// [`answer`] under `key` (the master key's `captcha` derivation), for a holder of the master
/// key outside the server: the browser tests.
pub fn answer_with(key: &DigestKey, id: &str) -> String {
    let digest = key.digest(id);
    let alphabet: Vec<char> = ALPHABET.chars().collect();
    digest
        .as_bytes()
        .iter()
        .take(LENGTH as usize)
        .map(|b| alphabet[usize::from(*b) % alphabet.len()])
        .collect()
}

/// The image of `text`, one character at a time (the crate draws a random character of the set
/// it is given, so the set is each character in turn).
fn draw(text: &str) -> Option<Vec<u8>> {
    let mut captcha = captcha::Captcha::new();
    for c in text.chars() {
        captcha.set_chars(&[c]).add_char();
    }
    captcha
        .apply_filter(captcha::filters::Noise::new(0.1))
        .apply_filter(captcha::filters::Wave::new(2.0, 8.0))
        .view(200, 70);
    captcha.as_png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_of_the_alphabet_can_be_drawn() {
        let supported = captcha::Captcha::new().supported_chars();
        assert!(ALPHABET.chars().all(|c| supported.contains(&c)));
        let png = draw("ab3x9").unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }
}
