//! Passkeys: the WebAuthn relying party and its ceremonies (`webauthn-rs` verifies; this module
//! decides what a ceremony is bound to and how long it lives).
//!
//! - **Ceremony state** is server-side and single use: a start stores it under a fresh random
//!   key in the session store ([`crate::session::SessionStore::put_once`], 5 minutes, shared by
//!   every instance) and hands the key to the browser in an HttpOnly cookie; the finish takes it
//!   ([`crate::session::SessionStore::take_once`]), so a replayed finish finds nothing. The state
//!   holds the 32-byte challenge the assertion must sign, and for registration and reauth the
//!   account and session it was started for.
//! - **User verification is required** in every ceremony (a PIN or biometric, not a tap), and
//!   registration asks for a discoverable credential, so the passkey can log in with no
//!   username (conditional mediation: passkey autofill in the username field).
//! - **User handles** are 16 random bytes per account, never its id or name.
//! - **Sign counts**: an assertion whose counter does not move past the stored one (for an
//!   authenticator that counts) is refused: a cloned authenticator. The API audits it.
//! - **Unknown usernames** get a decoy credential id derived from the secret key, so the
//!   answer does not tell whether the account exists or has passkeys.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    RequestChallengeResponse, Uuid, Webauthn, WebauthnBuilder,
};

pub use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError};

use crate::config::PasskeySettings;
use crate::secret::SecretKey;

/// How long a started ceremony may be finished.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// The cookie naming the ceremony in progress (its store key, not its state).
pub const CEREMONY_COOKIE: &str = crate::cookies::PASSKEY_CEREMONY_COOKIE;

/// What a started ceremony is bound to, kept server-side until its finish.
#[derive(Serialize, Deserialize)]
pub enum Ceremony {
    /// Adding a passkey to the account `user_id`, from session `session_id`.
    Register { user_id: i64, session_id: String, handle: Vec<u8>, name: String, state: PasskeyRegistration },
    /// A login with any discoverable passkey (no username given, or an unknown one).
    Login { state: DiscoverableAuthentication },
    /// A login with one of `user_id`'s passkeys (the username was given).
    LoginFor { user_id: i64, state: DiscoverableAuthentication },
    /// Proving presence again in session `session_id` of `user_id` (`/reauth/passkey`).
    Reauth { user_id: i64, session_id: String, state: DiscoverableAuthentication },
}

impl Ceremony {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ceremony state serialises")
    }

    pub fn from_bytes(b: &[u8]) -> Option<Ceremony> {
        serde_json::from_slice(b).ok()
    }
}

/// The relying party of this gateway.
pub struct Passkeys {
    webauthn: Webauthn,
    decoy: [u8; 32],
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys").finish_non_exhaustive()
    }
}

impl Passkeys {
    /// The relying party `settings` describe (validated with the configuration).
    pub fn new(settings: &PasskeySettings, secret: &SecretKey) -> Result<Passkeys, WebauthnError> {
        let (first, first_subdomains) = &settings.origins[0];
        let mut b = WebauthnBuilder::new(&settings.rp_id, first)?
            .rp_name(&settings.rp_name)
            .timeout(CEREMONY_TTL)
            .allow_subdomains(*first_subdomains);
        for (origin, _) in &settings.origins[1..] {
            b = b.append_allowed_origin(origin);
        }
        if settings.origins.iter().skip(1).any(|(_, s)| *s) {
            b = b.allow_subdomains(true);
        }
        Ok(Passkeys { webauthn: b.build()?, decoy: secret.derive("sessiongate passkey decoy v1") })
    }

    /// Creation options for `username`'s new passkey, and the ceremony to keep. `handle` is the
    /// account's user handle; `existing` its registered credentials (excluded, so one
    /// authenticator is not registered twice).
    pub fn start_registration(
        &self,
        user_id: i64,
        session_id: &str,
        username: &str,
        handle: &[u8],
        existing: Vec<CredentialID>,
        name: String,
    ) -> Result<(CreationChallengeResponse, Ceremony), WebauthnError> {
        let uuid = Uuid::from_slice(handle).map_err(|_| WebauthnError::InvalidUserUniqueId)?;
        let (mut ccr, state) = self.webauthn.start_passkey_registration(uuid, username, username, Some(existing))?;
        if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
            // A discoverable credential, so the passkey also logs in without a username
            // (webauthn-rs asks for "discouraged" and does not check the result either way).
            sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
            sel.require_resident_key = true;
        }
        let ceremony =
            Ceremony::Register { user_id, session_id: session_id.to_owned(), handle: handle.to_vec(), name, state };
        Ok((ccr, ceremony))
    }

    pub fn finish_registration(
        &self,
        credential: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Passkey, WebauthnError> {
        self.webauthn.finish_passkey_registration(credential, state)
    }

    /// Request options for a login with one account's credential `ids`, or, with none, for any
    /// discoverable passkey. `decoy_for`: the login key of an unknown account (or one without
    /// passkeys), answered with credential ids no authenticator holds, stable per name, shaped
    /// like a real account's (one or two ids of 16 to 64 bytes), so the answer does not say
    /// whether the account exists or has passkeys.
    pub fn start_login(
        &self,
        user: Option<(i64, Vec<CredentialID>)>,
        decoy_for: Option<&str>,
    ) -> Result<(RequestChallengeResponse, Ceremony), WebauthnError> {
        if let Some((user_id, ids)) = user.filter(|(_, ids)| !ids.is_empty()) {
            let (rcr, state) = self.allowing(ids)?;
            return Ok((rcr, Ceremony::LoginFor { user_id, state }));
        }
        if let Some(name) = decoy_for {
            let (rcr, state) = self.allowing(self.decoy_ids(name))?;
            return Ok((rcr, Ceremony::Login { state }));
        }
        let (rcr, state) = self.webauthn.start_discoverable_authentication()?;
        Ok((rcr, Ceremony::Login { state }))
    }

    /// Request options to re-prove presence with one of the user's passkeys.
    pub fn start_reauth(
        &self,
        user_id: i64,
        session_id: &str,
        ids: Vec<CredentialID>,
    ) -> Result<(RequestChallengeResponse, Ceremony), WebauthnError> {
        let (rcr, state) = self.allowing(ids)?;
        Ok((rcr, Ceremony::Reauth { user_id, session_id: session_id.to_owned(), state }))
    }

    /// A discoverable-style ceremony limited to `ids`. Every login verifies against the
    /// credential as stored at its finish (`finish_login`), never a copy taken at its start, so
    /// a sign count the store has moved past since is refused.
    fn allowing(
        &self,
        ids: Vec<CredentialID>,
    ) -> Result<(RequestChallengeResponse, DiscoverableAuthentication), WebauthnError> {
        let (mut rcr, state) = self.webauthn.start_discoverable_authentication()?;
        rcr.mediation = None;
        rcr.public_key.allow_credentials = ids
            .into_iter()
            .map(|id| webauthn_rs_proto::AllowCredentials { type_: "public-key".into(), id, transports: None })
            .collect();
        Ok((rcr, state))
    }

    /// The user handle and credential id a discoverable assertion names (not yet verified).
    pub fn identify<'a>(&self, credential: &'a PublicKeyCredential) -> Result<(Uuid, &'a [u8]), WebauthnError> {
        self.webauthn.identify_discoverable_authentication(credential)
    }

    /// Verify an assertion against `passkey` (as stored now) for the ceremony's challenge: its
    /// new sign count, and its new state when that or its backup flags changed.
    pub fn finish_login(
        &self,
        credential: &PublicKeyCredential,
        ceremony: Ceremony,
        mut passkey: Passkey,
    ) -> Result<(u32, Option<Passkey>), WebauthnError> {
        let state = match ceremony {
            Ceremony::Login { state } | Ceremony::LoginFor { state, .. } | Ceremony::Reauth { state, .. } => state,
            Ceremony::Register { .. } => return Err(WebauthnError::InvalidClientDataType),
        };
        let result = self.webauthn.finish_discoverable_authentication_v2(credential, state, &passkey)?;
        if result.cred_id() != passkey.cred_id() {
            return Err(WebauthnError::CredentialNotFound);
        }
        let changed = passkey.update_credential(&result) == Some(true);
        Ok((result.counter(), changed.then_some(passkey)))
    }

    fn decoy_ids(&self, login_key: &str) -> Vec<CredentialID> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.decoy).expect("any key length");
        mac.update(login_key.as_bytes());
        let seed = mac.finalize().into_bytes();
        let count = 1 + usize::from(seed[0] & 1);
        (0..count)
            .map(|i| {
                let len = 16 * (1 + usize::from(seed[1 + i] % 4));
                let mut mac = Hmac::<Sha256>::new_from_slice(&self.decoy).expect("any key length");
                mac.update(&seed);
                mac.update(&[i as u8]);
                let block = mac.finalize().into_bytes();
                block.iter().cycle().take(len).copied().collect()
            })
            .collect()
    }
}

/// The signature counter an assertion carries (authenticatorData bytes 33..37), for the audit
/// record of a refused, possibly cloned, authenticator.
pub fn asserted_counter(credential: &PublicKeyCredential) -> Option<u32> {
    let data: &[u8] = credential.response.authenticator_data.as_ref();
    Some(u32::from_be_bytes(data.get(33..37)?.try_into().ok()?))
}

/// The longest credential id WebAuthn allows (bytes); longer ones are refused.
pub const MAX_CREDENTIAL_ID: usize = 1023;

/// Most passkeys one account may register.
pub const MAX_PER_ACCOUNT: usize = 20;

/// A credential id as stored and as browsers spell `credential.id`: base64url, no padding.
pub fn credential_key(id: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// The credential ids of stored passkeys, from their own column (no need to parse the
/// credential): what options list and registration excludes.
pub fn credential_ids(records: &[crate::users::PasskeyRecord]) -> Vec<CredentialID> {
    use base64::Engine;
    records
        .iter()
        .filter_map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&r.credential_id).ok())
        .collect()
}
