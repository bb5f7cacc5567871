//! WebSocket pass-through: once both sides answered the handshake (the upstream with `101`),
//! the two upgraded connections are spliced with `copy_bidirectional` in a task of their own.
//! Frames are not inspected; the tunnel ends when either side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

pub fn tunnel(client: OnUpgrade, upstream: OnUpgrade, route: String) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(%route, error = %e, "websocket: upgrade did not complete");
                return;
            }
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(%route, up, down, "websocket: closed"),
            Err(e) => tracing::debug!(%route, error = %e, "websocket: ended with an error"),
        }
    });
}
