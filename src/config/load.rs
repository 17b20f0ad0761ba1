//! Where the settings come from: the defaults, then the `CONFIG_FILE`
//! table (keys in any case), then the environment.

use std::collections::BTreeSet;
use std::path::Path;

use config::Source;

use super::{Config, ConfigError};

impl Config {
    /// Reads `CONFIG_FILE` (if set) and the environment.
    ///
    /// # Errors
    /// A `ConfigError` naming the first bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = std::env::var_os("CONFIG_FILE").filter(|f| !f.is_empty());
        Self::load(
            file.as_deref().map(Path::new),
            config::Environment::default(),
        )
    }

    /// Reads the given variables only (and defaults): for tests and embedding.
    ///
    /// # Errors
    /// A `ConfigError` naming the first bad variable.
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Self::from_file_and_vars(None, vars)
    }

    /// Reads the TOML `file` (if any), then the given variables over it.
    ///
    /// # Errors
    /// A `ConfigError` naming the first bad variable, or the file and its
    /// unknown key.
    pub fn from_file_and_vars<'a>(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let map = vars
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self::load(file, config::Environment::default().source(Some(map)))
    }

    fn load(file: Option<&Path>, env: config::Environment) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            let table = config::Config::builder()
                .add_source(config::File::from(file).format(config::FileFormat::Toml))
                .build()?
                .collect()?;
            let known = Self::keys();
            for (key, value) in table {
                let key = key.to_ascii_lowercase();
                if !known.contains(&key) {
                    return Err(ConfigError::UnknownKey {
                        file: file.display().to_string(),
                        key,
                    });
                }
                // The file sits under the environment: its values are the
                // builder's defaults, which every source overrides.
                builder = builder.set_default(key, value)?;
            }
        }
        let config: Config = builder
            .add_source(env)
            .build()?
            .try_deserialize()
            .map_err(ConfigError::from_deserialize)?;
        config.check()
    }

    /// The keys of every setting, in lower case.
    fn keys() -> BTreeSet<String> {
        Config::default()
            .settings()
            .into_iter()
            .map(|(var, _)| var.to_ascii_lowercase())
            .collect()
    }
}
