//! `sesame tenant applications` and `sesame tenant approve`: free trials, approved by a
//! platform administrator. These run with the whole application state, since an approval
//! creates keys and sends an email.

use anyhow::bail;

use super::TenantCommand;
use crate::app::App;
use crate::bootstrap;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::trials;

pub async fn run(command: TenantCommand, config: Config, clock: SharedClock) -> anyhow::Result<()> {
    let opened = {
        let (config, clock) = (config.clone(), clock.clone());
        tokio::task::spawn_blocking(move || bootstrap::open(&config, &clock)).await??
    };
    let app = App::new(config, opened.store, clock, opened.master)?;
    match command {
        TenantCommand::Applications => {
            let pending = app.store.run(|c| trials::pending(c, 1000)).await?;
            if pending.is_empty() {
                println!("no pending applications");
            }
            for a in pending {
                println!(
                    "{}  {}  {} <{}> {}  applied {}",
                    a.id,
                    a.company,
                    a.contact_name,
                    a.email,
                    a.phone,
                    crate::flow::password::format_time(a.created_at)
                );
            }
        }
        TenantCommand::Approve {
            id,
            tenant_id,
            days,
        } => {
            if !(1..=365).contains(&days) {
                bail!("--days must be between 1 and 365");
            }
            let approved = crate::trial::approve(&app, &id, tenant_id.as_deref(), days).await?;
            println!(
                "approved: tenant {} in trial until {}; issuer {}; activation link sent to {}",
                approved.tenant,
                crate::flow::password::format_time(approved.expires_at),
                app.issuer(&approved.tenant),
                approved.email
            );
        }
        _ => bail!("not a free-trial command"),
    }
    Ok(())
}
