//! `config`: the effective configuration, as start-up would read it.

use crate::Config;

use super::CliError;

/// `event-pipeline config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object instead of VARIABLE=value lines.
    #[arg(long)]
    pub json: bool,
}

/// Prints every setting, secrets masked; a bad one fails as start-up would.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let config =
        Config::from_env().map_err(|e| CliError::Usage(format!("configuration error: {e}")))?;
    let settings = config.settings();
    if args.json {
        let object: serde_json::Map<String, serde_json::Value> = settings
            .into_iter()
            .map(|(var, value)| (var, serde_json::Value::String(value)))
            .collect();
        println!("{}", serde_json::Value::Object(object));
    } else {
        for (var, value) in settings {
            println!("{var}={value}");
        }
    }
    Ok(())
}
