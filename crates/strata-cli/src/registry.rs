//! Registry commands: pull, push, login (and the transfer progress they show).

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Result};
use strata::image::reference::display_tag;
use strata::Engine;

use crate::*;

pub(crate) fn progress(quiet: bool) -> std::sync::Arc<dyn strata::registry::Progress> {
    if quiet {
        std::sync::Arc::new(strata::registry::Quiet)
    } else {
        std::sync::Arc::new(format::TransferProgress::new(io::stderr().is_terminal()))
    }
}

pub(crate) fn pull(engine: &Engine, a: PullArgs) -> Result<ExitCode> {
    let opts = strata::registry::PullOptions {
        platform: a.platform.clone(),
        registry: a.transport.options(a.max_concurrent_downloads),
    };
    let id = engine.registries().pull(&a.image, &opts, progress(a.quiet))?;
    if a.quiet {
        println!("{id}");
    } else {
        let name = strata::image::Reference::parse(&a.image)?;
        println!("Status: Downloaded image for {}", display_tag(&name.to_string()));
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn push(engine: &Engine, a: PushArgs) -> Result<ExitCode> {
    let opts = a.transport.options(a.max_concurrent_uploads);
    let digest = engine.registries().push(&a.image, a.destination.as_deref(), &opts, progress(a.quiet))?;
    if a.quiet {
        println!("{digest}");
    } else {
        let dest = a.destination.as_deref().unwrap_or(&a.image);
        println!("{dest}: digest: {digest}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn login(a: LoginArgs) -> Result<ExitCode> {
    let user = match a.username {
        Some(u) => u,
        None => {
            if !io::stdin().is_terminal() || a.password_stdin {
                bail!("login needs --username (-u)");
            }
            print!("Username: ");
            io::stdout().flush()?;
            let mut u = String::new();
            io::stdin().read_line(&mut u)?;
            u.trim().to_string()
        }
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            io::stdin().read_line(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("give the password with --password-stdin (or --password)"),
    };
    if user.is_empty() || password.is_empty() {
        bail!("user name and password must not be empty");
    }
    strata::registry::login(&a.registry, &user, &password, &a.transport.options(0))?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}
