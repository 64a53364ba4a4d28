//! A real Distribution registry (Debian's `docker-registry`) on 127.0.0.1, plain HTTP, with
//! or without htpasswd basic auth, in a temp dir that goes away with it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Guarded;
use crate::{Error, Result, io};

/// A running loopback registry.
pub struct Registry {
    process: Guarded,
    dir: tempfile::TempDir,
    addr: String,
    credentials: Option<(String, String)>,
}

impl Registry {
    /// Start a registry without authentication.
    pub fn start() -> Result<Self> {
        Self::start_inner(None)
    }

    /// Start a registry that requires basic auth with `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> Result<Self> {
        Self::start_inner(Some((user.to_string(), password.to_string())))
    }

    fn start_inner(credentials: Option<(String, String)>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lca-registry-")
            .tempdir()
            .map_err(io("creating the registry dir"))?;
        let root = dir.path();
        let port = crate::controlplane::free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: lca-test-secret\n",
            root.join("data").display()
        );
        if let Some((user, password)) = &credentials {
            write_htpasswd(root, user, password)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: lca-realm\n    path: {}\n",
                root.join("htpasswd").display()
            ));
        }
        let config_path = root.join("config.yml");
        std::fs::write(&config_path, config).map_err(io("writing the registry config"))?;
        let process = serve(root)?;
        let registry = Self {
            process,
            dir,
            addr,
            credentials,
        };
        registry.wait_ready(Duration::from_secs(20))?;
        Ok(registry)
    }

    /// Revoke the credentials: the registry comes back on the same address and storage,
    /// accepting only `password` (distribution reads its htpasswd file once, at start).
    pub fn change_password(&mut self, password: &str) -> Result<()> {
        let Some((user, _)) = self.credentials.clone() else {
            return Err(Error::Setup("the registry has no credentials to change".into()));
        };
        write_htpasswd(self.dir.path(), &user, password)?;
        self.stop()?;
        self.credentials = Some((user, password.to_string()));
        self.restart()
    }

    /// Stop the registry (its port refuses connections) until [`Registry::restart`].
    pub fn stop(&mut self) -> Result<()> {
        // The guardian removes the registry's dir when its child stops: keep it aside.
        let root = self.dir.path().to_path_buf();
        let aside = root.with_extension("stopped");
        std::fs::rename(&root, &aside).map_err(io("moving the registry dir aside"))?;
        self.process.stop();
        std::fs::rename(&aside, &root).map_err(io("moving the registry dir back"))
    }

    /// Start a stopped registry again on the same address, storage and credentials.
    pub fn restart(&mut self) -> Result<()> {
        self.process = serve(self.dir.path())?;
        self.wait_ready(Duration::from_secs(20))
    }

    fn wait_ready(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Error::Timeout {
            what: format!("registry on {} ({})", self.addr, self.process.log_tail(5)),
            secs: limit.as_secs(),
        })
    }

    /// `127.0.0.1:<port>`, the registry part of image references.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Credentials when started with auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// A docker auth JSON for this registry: its credentials, or none (`{"auths":{}}`).
    pub fn auth_json(&self) -> String {
        match self.credentials() {
            Some((u, p)) => {
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                serde_json::json!({"auths": {self.addr(): {"auth": token}}}).to_string()
            }
            None => r#"{"auths":{}}"#.to_string(),
        }
    }

    /// Process id of the `docker-registry` process, e.g. to freeze it with SIGSTOP (a
    /// registry that accepts connections and never answers).
    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// Directory of the registry's config, storage and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `docker-registry serve` of the config in `root`.
fn serve(root: &Path) -> Result<Guarded> {
    let argv = [
        "docker-registry".to_string(),
        "serve".to_string(),
        root.join("config.yml").display().to_string(),
    ];
    Guarded::spawn(
        "docker-registry",
        &argv,
        &[],
        &root.join("registry.log"),
        Some(root),
    )
}

/// `root/htpasswd` holding `user` with `password` (bcrypt, as distribution requires).
fn write_htpasswd(root: &Path, user: &str, password: &str) -> Result<()> {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .map_err(io("running htpasswd (apt package apache2-utils)"))?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "htpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    std::fs::write(root.join("htpasswd"), &out.stdout).map_err(io("writing htpasswd"))
}
