//! Why the configuration was refused: always naming the variable (or the
//! file) and what it accepts.

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value of the wrong form.
    #[error("invalid {var}{detail}")]
    Invalid {
        /// The variable.
        var: String,
        /// What it was set to and the accepted form:
        /// `="abc": expected a port number from 0 to 65535` (or `: ` and
        /// why a value from the file is no single value).
        detail: String,
    },
    /// `CONFIG_FILE` has a key that is no setting (a typo would otherwise
    /// be ignored).
    #[error("{file}: unknown setting {key:?} (the keys are the variable names, e.g. port or max_queue_size)")]
    UnknownKey {
        /// The file.
        file: String,
        /// The key.
        key: String,
    },
    /// Values that are fine alone but not together.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// The configuration file could not be read.
    #[error("cannot read the configuration: {0}")]
    Source(#[from] config::ConfigError),
}

impl ConfigError {
    /// A refusal from deserializing: a setting's form refused its text
    /// (see `forms::setting`) becomes `Invalid` naming the variable.
    pub(crate) fn from_deserialize(e: config::ConfigError) -> Self {
        if let config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } = &e
        {
            if let config::ConfigError::Message(detail) = error.as_ref() {
                // A form's refusal quotes the text; anything else is serde's.
                let detail = if detail.starts_with('"') {
                    format!("={detail}")
                } else {
                    format!(": {detail}")
                };
                return ConfigError::Invalid {
                    var: key.to_ascii_uppercase(),
                    detail,
                };
            }
        }
        ConfigError::Source(e)
    }
}
