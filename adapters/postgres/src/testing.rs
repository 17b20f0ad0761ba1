//! For tests (feature `testing`): a schema of its own in the test
//! PostgreSQL database, dropped afterwards, so that tests running in
//! parallel never see each other's events.

use std::str::FromStr;

use tokio_postgres::NoTls;

/// A schema created for one test; dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct TempSchema {
    base: String,
    name: String,
}

impl TempSchema {
    /// Creates a schema named after `prefix` in the test database.
    ///
    /// # Errors
    /// When the database cannot be reached (the caller decides whether to
    /// skip or fail, see `ep_conformance::services`).
    pub async fn create(base: &str, name: String) -> Result<Self, String> {
        let (client, connection) = tokio_postgres::connect(base, NoTls)
            .await
            .map_err(|e| crate::error::describe(&e))?;
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .map_err(|e| crate::error::describe(&e))?;
        drop(client);
        let _ = connection.await;
        Ok(Self {
            base: base.to_owned(),
            name,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL whose connections work in this schema only.
    pub fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.base, self.name
        )
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop may run inside a runtime: do the I/O on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let config = tokio_postgres::Config::from_str(&base).ok()?;
                let (client, connection) = config.connect(NoTls).await.ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}
