//! The log filter every command and the Windows service share: `VIGIE_LOG` when it parses
//! (`warn`, `info,h2=debug`: a default level, then `target=level` pairs), else the command's
//! default. A plain target filter, not `EnvFilter`: that one links a regex engine into every
//! agent for span and field filters nobody sets on a clinic PC.

use tracing::Level;
use tracing_subscriber::filter::Targets;

/// The environment variable that overrides the default.
pub const LOG_ENV: &str = "VIGIE_LOG";

/// `VIGIE_LOG` if set and valid, else `default` for the agent's own logs, with the chatty
/// libraries (HTTP/2, hyper, the old outbox's sled) at `warn` at most.
pub fn filter(default: Level) -> Targets {
    std::env::var(LOG_ENV)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            let quiet = default.min(Level::WARN);
            Targets::new()
                .with_default(default)
                .with_target("h2", quiet)
                .with_target("hyper", quiet)
                .with_target("sled", quiet)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn libraries_stay_at_warn_under_an_info_default() {
        let info = filter(Level::INFO);
        assert_eq!(info.default_level(), Some(LevelFilter::INFO));
        assert!(!info.would_enable("h2::codec", &Level::INFO));
        assert!(info.would_enable("h2::codec", &Level::WARN));
        assert!(info.would_enable("vigie_agent::run", &Level::INFO));
        let warn = filter(Level::WARN);
        assert!(!warn.would_enable("vigie_agent::run", &Level::INFO));
    }

    #[test]
    fn the_variable_takes_the_directives_it_took_before() {
        let parsed: Targets = "info,sled=warn,h2=warn,hyper=warn".parse().expect("parses");
        assert!(parsed.would_enable("vigie_agent::outbox", &Level::INFO));
        assert!(!parsed.would_enable("hyper::proto", &Level::INFO));
    }
}
