//! Single-use values in Redis (`PREFIX o:KEY`, a string with native expiry): passkey
//! ceremonies, taken once by any instance.

use chrono::{DateTime, Utc};

use super::{OP_TIMEOUT, RedisStore, at_ms, bounded, unavailable};
use crate::session::StoreError;

impl RedisStore {
    pub(super) async fn put_one_shot(
        &self,
        key: &str,
        value: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        bounded(OP_TIMEOUT, async {
            let mut conn = self.conn.clone();
            ::redis::cmd("SET")
                .arg(format!("{}o:{key}", self.prefix))
                .arg(value)
                .arg("PXAT")
                .arg(at_ms(expires_at))
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    /// GETDEL is atomic (of two takes one gets the value); native expiry has already dropped an
    /// expired one.
    pub(super) async fn take_one_shot(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        bounded(OP_TIMEOUT, async {
            let mut conn = self.conn.clone();
            ::redis::cmd("GETDEL")
                .arg(format!("{}o:{key}", self.prefix))
                .query_async::<Option<Vec<u8>>>(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }
}
