//! The servers the service-backed tests talk to (PostgreSQL, NATS, Redis),
//! each in a container started with testcontainers from a local image
//! (`scripts/test-images.sh` builds them; `EP_TEST_{POSTGRES,NATS,REDIS}_IMAGE`
//! names another, such as an official image on a developer's machine). One
//! container per service is shared by the tests of one test binary (each
//! test has its own database schema, key or subject prefix) and removed
//! when the binary exits; a test that stops or pauses its server starts
//! one of its own.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage, ImageExt};

/// A server the tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// PostgreSQL (the store).
    Postgres,
    /// NATS (a bus).
    Nats,
    /// Redis (a bus).
    Redis,
}

/// The label every container these tests start carries: the process that
/// started it, so that containers of a process that died are removed too.
const OWNER_LABEL: &str = "ep-test.owner";

/// How long a server may take to answer once its container said it is
/// ready (an official PostgreSQL image restarts once after its first
/// initialisation).
const ANSWERS_WITHIN: Duration = Duration::from_secs(30);

impl Service {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::Nats => "NATS",
            Service::Redis => "Redis",
        }
    }

    /// The variable naming a server of the developer's instead of a container.
    pub fn url_var(self) -> &'static str {
        match self {
            Service::Postgres => "EP_TEST_POSTGRES_URL",
            Service::Nats => "EP_TEST_NATS_URL",
            Service::Redis => "EP_TEST_REDIS_URL",
        }
    }

    /// The variable naming the image (`name:tag`) to start.
    pub fn image_var(self) -> &'static str {
        match self {
            Service::Postgres => "EP_TEST_POSTGRES_IMAGE",
            Service::Nats => "EP_TEST_NATS_IMAGE",
            Service::Redis => "EP_TEST_REDIS_IMAGE",
        }
    }

    fn default_image(self) -> &'static str {
        match self {
            Service::Postgres => "ep-test/postgres:latest",
            Service::Nats => "ep-test/nats:latest",
            Service::Redis => "ep-test/redis:latest",
        }
    }

    /// The port the server listens on inside its container.
    fn port(self) -> u16 {
        match self {
            Service::Postgres => 5432,
            Service::Nats => 4222,
            Service::Redis => 6379,
        }
    }

    /// What the server logs once it accepts connections (the local images
    /// and the official ones alike).
    fn ready(self) -> WaitFor {
        match self {
            Service::Postgres => {
                WaitFor::message_on_stderr("database system is ready to accept connections")
            }
            Service::Nats => WaitFor::message_on_stderr("Server is ready"),
            Service::Redis => WaitFor::message_on_stdout("Ready to accept connections"),
        }
    }

    /// Whether the server published on `port` answers in its own protocol.
    /// A TCP connection alone proves nothing: the engine's proxy accepts
    /// it whether or not the server listens yet (the official PostgreSQL
    /// image, for one, runs a server for its initialisation first, on a
    /// socket only, and logs "ready" for it too).
    fn answers(self, port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let mut first = [0u8; 4];
        match self {
            // An SSLRequest: a server answers one byte, 'S' or 'N'.
            Service::Postgres => {
                stream
                    .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
                    .is_ok()
                    && stream.read_exact(&mut first[..1]).is_ok()
                    && matches!(first[0], b'S' | b'N')
            }
            // The server speaks first: `INFO {...}`.
            Service::Nats => stream.read_exact(&mut first).is_ok() && &first == b"INFO",
            Service::Redis => {
                stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut first[..1]).is_ok()
                    && first[0] == b'+'
            }
        }
    }

    /// The URL of the server at `port` on this machine.
    pub fn url_at(self, port: u16) -> String {
        match self {
            Service::Postgres => format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Service::Nats => format!("nats://127.0.0.1:{port}"),
            Service::Redis => format!("redis://127.0.0.1:{port}"),
        }
    }

    /// The image to start, as `(name, tag)`.
    fn image(self) -> (String, String) {
        let image =
            std::env::var(self.image_var()).unwrap_or_else(|_| self.default_image().to_owned());
        match image.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
            _ => (image, "latest".to_owned()),
        }
    }
}

/// A server in a container of its own, removed when dropped.
pub struct Server {
    /// Which.
    pub service: Service,
    /// Its URL from this machine.
    pub url: String,
    /// The host port its port is published on.
    pub port: u16,
    /// Its id.
    id: String,
    /// `None` once dropped.
    container: Option<Container<GenericImage>>,
}

impl Drop for Server {
    /// Removes the container, on a thread of its own: the blocking
    /// container has a runtime of its own, which may not be used from
    /// inside the test's.
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            let _ = std::thread::spawn(move || drop(container)).join();
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("service", &self.service)
            .field("url", &self.url)
            .field("container", &self.id)
            .finish()
    }
}

impl Server {
    /// Starts `service` in a new container, waiting until it accepts
    /// connections, its port published on a port the engine chooses.
    /// Blocking: call it from a thread of its own (see
    /// [`Server::start_async`]).
    ///
    /// # Errors
    /// Why it could not start (no engine, no image, ...), with what to do.
    pub fn start(service: Service) -> Result<Self, String> {
        Self::start_on(service, None)
    }

    /// As [`Server::start`], published on `host_port` when given: a port
    /// that stays the same when the container is stopped and started again,
    /// or replaced by a new container on the same port.
    ///
    /// # Errors
    /// As [`Server::start`].
    pub fn start_on(service: Service, host_port: Option<u16>) -> Result<Self, String> {
        reap_orphans();
        let (name, tag) = service.image();
        let image = GenericImage::new(name.clone(), tag.clone())
            .with_exposed_port(service.port().tcp())
            .with_wait_for(service.ready())
            // The official PostgreSQL image asks for a password unless told.
            .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
            .with_label(OWNER_LABEL, std::process::id().to_string());
        let image = match host_port {
            Some(port) => image.with_mapped_port(port, service.port().tcp()),
            None => image,
        };
        let container = image.start().map_err(|e| {
            format!(
                "could not start a {} container from {name}:{tag} ({e}). Run \
                     scripts/test-images.sh (it builds the images and starts the engine), \
                     set {} to another image, or {} to a server of yours",
                service.name(),
                service.image_var(),
                service.url_var()
            )
        })?;
        let port = container
            .get_host_port_ipv4(service.port().tcp())
            .map_err(|e| format!("{} container has no published port: {e}", service.name()))?;
        let deadline = Instant::now() + ANSWERS_WITHIN;
        while !service.answers(port) {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} container on port {port} never answered",
                    service.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            service,
            url: service.url_at(port),
            port,
            id: container.id().to_owned(),
            container: Some(container),
        })
    }

    /// [`Server::start_on`] from async code (on a thread of its own: the
    /// blocking runner has a runtime of its own).
    ///
    /// # Errors
    /// As [`Server::start`].
    pub async fn start_async(service: Service, host_port: Option<u16>) -> Result<Self, String> {
        tokio::task::spawn_blocking(move || {
            std::thread::spawn(move || Self::start_on(service, host_port))
                .join()
                .unwrap_or_else(|_| Err("starting the container panicked".to_owned()))
        })
        .await
        .unwrap_or_else(|e| Err(format!("starting the container failed: {e}")))
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `docker ARGS... <this container>`: `stop`, `start`, `pause`,
    /// `unpause`, `kill`.
    ///
    /// # Panics
    /// When docker fails: a fault a test cannot inject is a failed test.
    pub async fn docker(&self, args: &[&str]) {
        let status = tokio::process::Command::new("docker")
            .args(args)
            .arg(&self.id)
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .expect("run docker");
        assert!(status.success(), "docker {args:?} {} failed", self.id);
    }
}

/// The shared servers of this test binary, started on first use.
fn shared_slot(service: Service) -> &'static OnceLock<Result<String, String>> {
    static POSTGRES: OnceLock<Result<String, String>> = OnceLock::new();
    static NATS: OnceLock<Result<String, String>> = OnceLock::new();
    static REDIS: OnceLock<Result<String, String>> = OnceLock::new();
    match service {
        Service::Postgres => &POSTGRES,
        Service::Nats => &NATS,
        Service::Redis => &REDIS,
    }
}

/// The URL of `service` for this test binary: the server its variable
/// names, or else its shared container (started on first use, removed when
/// the binary exits).
///
/// # Errors
/// Why there is none.
pub async fn shared(service: Service) -> Result<String, String> {
    if let Ok(url) = std::env::var(service.url_var()) {
        return Ok(url);
    }
    tokio::task::spawn_blocking(move || {
        shared_slot(service)
            .get_or_init(|| {
                std::thread::spawn(move || {
                    let server = Server::start(service)?;
                    let url = server.url.clone();
                    remove_at_exit(server);
                    Ok(url)
                })
                .join()
                .unwrap_or_else(|_| Err("starting the container panicked".to_owned()))
            })
            .clone()
    })
    .await
    .unwrap_or_else(|e| Err(format!("starting the container failed: {e}")))
}

/// Container ids to remove when the process exits.
static AT_EXIT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps `server` running until the process exits, then removes it.
fn remove_at_exit(server: Server) {
    let id = server.id().to_owned();
    // Its Drop would remove it now; the process removes it at exit instead.
    std::mem::forget(server);
    let mut ids = AT_EXIT.lock().unwrap_or_else(PoisonError::into_inner);
    if ids.is_empty() {
        crate::exit::on_exit(remove_shared);
    }
    ids.push(id);
}

fn remove_shared() {
    let ids = AT_EXIT.lock().map(|ids| ids.clone()).unwrap_or_default();
    if !ids.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", "--volumes"])
            .args(&ids)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Removes containers whose owner process is gone (a test binary that was
/// killed before its exit hook ran). Best effort, once per process.
fn reap_orphans() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok(out) = std::process::Command::new("docker")
            .args([
                "ps",
                "--all",
                "--filter",
                &format!("label={OWNER_LABEL}"),
                "--format",
                &format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}"),
            ])
            .output()
        else {
            return;
        };
        let orphans: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (id, pid) = line.split_once(' ')?;
                let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
                (!alive).then(|| id.to_owned())
            })
            .collect();
        if !orphans.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "--force", "--volumes"])
                .args(&orphans)
                .output();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A listener on a free port whose first connection is handled by `serve`.
    fn serving(serve: fn(std::net::TcpStream)) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                serve(stream);
            }
        });
        port
    }

    #[test]
    fn a_port_that_accepts_and_closes_is_no_server() {
        // What the engine's proxy does while nothing listens in the container.
        for service in [Service::Postgres, Service::Nats, Service::Redis] {
            let port = serving(drop);
            assert!(!service.answers(port), "{service:?}");
        }
    }

    #[test]
    fn each_server_is_recognised_by_its_own_first_answer() {
        let postgres = serving(|mut s| {
            let mut request = [0u8; 8];
            if s.read_exact(&mut request).is_ok() && request == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]
            {
                let _ = s.write_all(b"N");
            }
        });
        assert!(Service::Postgres.answers(postgres));
        let nats = serving(|mut s| {
            let _ = s.write_all(b"INFO {}\r\n");
        });
        assert!(Service::Nats.answers(nats));
        let redis = serving(|mut s| {
            let mut ping = [0u8; 6];
            if s.read_exact(&mut ping).is_ok() && &ping == b"PING\r\n" {
                let _ = s.write_all(b"+PONG\r\n");
            }
        });
        assert!(Service::Redis.answers(redis));
    }
}
