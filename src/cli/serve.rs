//! `sesame serve`

use std::time::Duration;

use anyhow::Context;

use super::ServeArgs;
use crate::app::App;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::master::MasterKeySource;
use crate::store::{
    access_revocations, clients, flows, jtis, outbox, refresh, sessions, tokens, verification_codes,
};
use crate::{bootstrap, demo, router, server, telemetry};

/// How often expired one-time tokens are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// Short, so each checkpoint is short: with a checkpoint once a second, the one core of a pinned
/// server paused often enough for a paced refresh load's p99 to reach 4-13 ms; at 200 ms it stayed
/// at 2-3 ms, with the same throughput (docs/performance.md). A log with nothing new costs nothing.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

pub async fn serve(mut config: Config, clock: SharedClock, args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init_logging(&config.log);
    let addr = config.listen_addr()?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("config key `listen`: cannot listen on {addr} — is another process using it?")
    })?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(server::tls_config(cert, key).await?),
        _ => None,
    };
    let opened = {
        let (config, clock) = (config.clone(), clock.clone());
        tokio::task::spawn_blocking(move || bootstrap::open(&config, &clock)).await??
    };
    if let MasterKeySource::Generated(path) = &opened.master_source {
        tracing::warn!(path = %path.display(), "generated a new master key: back it up; without it the signing keys cannot be read");
    }
    if !opened.migrations_applied.is_empty() {
        tracing::info!(applied = ?opened.migrations_applied, "database migrated");
    }
    if args.demo {
        // The demo's codes land in the outbox (`sesame outbox list`, the tenant's /dev/outbox
        // page) unless real delivery is configured.
        use crate::notify::config::Driver;
        for driver in [&mut config.email.driver, &mut config.sms.driver] {
            if *driver == Driver::Disabled {
                *driver = Driver::Outbox;
            }
        }
    }
    let app = App::new(config.clone(), opened.store, clock, opened.master)?;
    if args.demo {
        let seeded = demo::seed(&app).await?;
        println!("{}", seeded.banner(&app));
    }
    spawn_sweeper(app.clone());
    spawn_checkpointer(app.clone());
    let router = router::build(app.clone());
    tracing::info!(listen = %listener.local_addr()?, public_url = %config.public_url, tls = tls.is_some(), "sesame is serving");
    let delay = Duration::from_secs(config.http.shutdown_delay_secs);
    let draining = app.clone();
    let shutdown = async move {
        server::shutdown_signal().await;
        // Failing readiness first lets the balancer take the node out before connections close.
        draining
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !delay.is_zero() {
            tracing::info!(
                seconds = delay.as_secs(),
                "stopping: /readyz fails while the node drains"
            );
            tokio::time::sleep(delay).await;
        }
    };
    server::run(
        listener,
        router,
        tls,
        shutdown,
        Duration::from_secs(config.http.shutdown_grace_secs),
    )
    .await
}

/// On SQLite, checkpoints the WAL every [`CHECKPOINT_EVERY`] (see `Store::checkpoint`).
fn spawn_checkpointer(app: App) {
    if app.store.kind() != crate::config::DatabaseKind::Sqlite {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.store.checkpoint().await {
                tracing::warn!(error = %e, "checkpointing the SQLite WAL failed");
            }
        }
    });
}

fn spawn_sweeper(app: App) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            let now = app.now();
            let default_lifetime = app.config.tokens.access_token_lifetime;
            let swept = app
                .store
                .run(move |c| {
                    // A revocation older than every access token that can be live revokes
                    // nothing; five minutes more allow for the nodes' clocks to differ.
                    let longest = clients::longest_access_token_lifetime(c)?
                        .unwrap_or(0)
                        .max(default_lifetime)
                        + 300;
                    Ok(access_revocations::sweep(c, now.plus(-longest))?
                        + tokens::sweep_expired(c, now)?
                        + flows::sweep_expired(c, now)?
                        + jtis::sweep_expired(c, now)?
                        + sessions::sweep_expired(c, now)?
                        + refresh::sweep_expired(c, now)?
                        + verification_codes::sweep_expired(c, now)?
                        + outbox::sweep(c, now)?)
                })
                .await;
            match swept {
                Ok(n) if n > 0 => {
                    tracing::debug!(swept = n, "expired tokens, flows and sessions removed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping expired tokens failed"),
            }
        }
    });
}
