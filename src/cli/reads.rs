//! `query`, `stats`, `event-types`: the REST reads, their JSON printed as
//! the service sent it (keys in its order), one line, or indented for
//! people with `--pretty`.

use super::client::{Client, Remote};
use super::output::{emit, pretty};
use super::CliError;

/// `event-pipeline query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The service.
    #[command(flatten)]
    pub remote: Remote,
    /// Only events of this type.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub event_type: Option<String>,
    /// Only events of this session.
    #[arg(long = "session", value_name = "SESSION_ID")]
    pub session_id: Option<String>,
    /// Only events of this user.
    #[arg(long = "user", value_name = "USER_ID")]
    pub user_id: Option<String>,
    /// Only events after this instant (ISO 8601, e.g. 2026-11-20T09:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// How many, newest first (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Indented JSON for people (keys still in the service's order).
    #[arg(long)]
    pub pretty: bool,
}

/// `event-pipeline stats` and `event-pipeline event-types`.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// The service.
    #[command(flatten)]
    pub remote: Remote,
    /// Indented JSON for people (keys still in the service's order).
    #[arg(long)]
    pub pretty: bool,
}

/// Prints `text`, the service's JSON, on one line or indented.
fn show(text: &str, indented: bool) {
    let _ = if indented {
        emit(&pretty(text))
    } else {
        emit(text)
    };
}

/// `GET /api/v1/events` with the filters given.
pub(crate) async fn query(args: QueryArgs) -> Result<(), CliError> {
    let limit = args.limit.to_string();
    let params: Vec<(&str, &str)> = [
        ("event_type", args.event_type.as_deref()),
        ("session_id", args.session_id.as_deref()),
        ("user_id", args.user_id.as_deref()),
        ("since", args.since.as_deref()),
        ("limit", Some(limit.as_str())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let query = serde_urlencoded::to_string(params)
        .map_err(|e| CliError::Usage(format!("cannot encode the query: {e}")))?;
    let client = Client::new(&args.remote)?;
    let (_, text) = client.get_text(&format!("/api/v1/events?{query}")).await?;
    show(&text, args.pretty);
    Ok(())
}

/// `GET path`, its JSON printed as the service sent it.
pub(crate) async fn get(args: &ReadArgs, path: &str) -> Result<(), CliError> {
    let (_, text) = Client::new(&args.remote)?.get_text(path).await?;
    show(&text, args.pretty);
    Ok(())
}
