//! `sessiongate init` and `sessiongate check`.

use super::{Cli, Failure, InitMode, settings};
use crate::config::Overrides;
use crate::server;

pub(super) fn init(mode: InitMode, force: bool, output: &std::path::Path) -> Result<(), Failure> {
    if output.exists() && !force {
        return Err(Failure::runtime(format!("{} already exists; pass --force to overwrite it", output.display())));
    }
    let text = crate::config::template(matches!(mode, InitMode::CrossOrigin), &crate::secret::random_b64(32));
    crate::secret::write_private(output, text.as_bytes())
        .map_err(|e| Failure::runtime(format!("writing {}: {e}", output.display())))?;
    println!("wrote {}", output.display());
    Ok(())
}

pub(super) async fn check(cli: &Cli) -> Result<(), Failure> {
    let s = settings(cli, &Overrides::default())?;
    for w in s.warnings.iter().cloned().chain(crate::server::permission_warnings(&s)) {
        println!("warning: {w}");
    }
    let mut problems = Vec::new();
    // A check writes nothing: with no database yet (a fresh data_dir), the stores are opened
    // on a scratch copy of it, which `serve` would create for real.
    let fresh = !s.sqlite_path().exists();
    let scratch = std::env::temp_dir().join(format!("sessiongate-check-{}", crate::secret::random_b64(9)));
    let probe = if fresh {
        println!(
            "note: {} has no database yet; `sessiongate serve` creates it (and the secret key)",
            s.data_dir.display()
        );
        let mut p = s.clone();
        p.data_dir = scratch.clone();
        p
    } else {
        s.clone()
    };
    match server::open_stores(&probe).await {
        Ok(stores) => {
            if let Err(e) = stores.sessions.store().ping().await {
                problems.push(format!("session store: {e}"));
            }
            if let Err(e) = stores.users.ping().await {
                problems.push(format!("user store: {e}"));
            }
        }
        Err(e) => problems.push(format!("stores: {e:#}")),
    }
    if fresh {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    for r in &s.routes {
        let host = r.upstream.host_str().unwrap_or("");
        let port = r.upstream.port_or_known_default().unwrap_or(80);
        let connect = tokio::net::TcpStream::connect((host, port));
        match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
            Ok(Ok(_)) => {}
            _ => problems.push(format!("route {}: upstream {} is not reachable", r.prefix, r.upstream)),
        }
    }
    if problems.is_empty() {
        println!("configuration ok; stores and upstreams reachable");
        Ok(())
    } else {
        Err(Failure::runtime(problems.join("\n")))
    }
}
