//! How the domain's errors become problem responses: the API's single error model (store
//! outages fail closed as 503, conflicts as 409), in one place above the modules that raise them.

use http::StatusCode;

use crate::http::Problem;

impl From<crate::session::StoreError> for Problem {
    fn from(e: crate::session::StoreError) -> Self {
        tracing::error!(error = %e, "session store failed");
        Problem::store_unavailable()
    }
}

impl From<crate::users::UserStoreError> for Problem {
    fn from(e: crate::users::UserStoreError) -> Self {
        use crate::users::UserStoreError as E;
        match e {
            E::UsernameTaken => Problem::username_taken(),
            E::EmailTaken => Problem::email_taken(),
            E::PasskeyTaken => Problem::new(
                StatusCode::CONFLICT,
                "passkey_taken",
                "Passkey already registered",
                "This passkey is already registered.",
            ),
            E::Unsupported(what) => Problem::new(
                StatusCode::FORBIDDEN,
                "not_supported",
                "Not supported",
                format!("The configured user store does not support {what}."),
            ),
            E::Unavailable(msg) => {
                tracing::error!(error = %msg, "user store failed");
                Problem::overloaded("The user store is unavailable; try again shortly.")
            }
        }
    }
}

impl From<crate::password::PasswordError> for Problem {
    fn from(e: crate::password::PasswordError) -> Self {
        match e {
            crate::password::PasswordError::Overloaded => {
                Problem::overloaded("Too many logins in progress; try again shortly.")
            }
            crate::password::PasswordError::Internal(msg) => {
                tracing::error!(error = %msg, "password hashing failed");
                Problem::internal()
            }
        }
    }
}
