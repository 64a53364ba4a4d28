//! A real Kubernetes control plane on loopback: etcd and kube-apiserver on free ports in a
//! temp dir, a self-signed serving certificate, static admin credentials, service-account
//! keys, a kubeconfig, and the lca.openshift.io CRDs installed and Established.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::process::Guarded;
use crate::{Error, Result, assets, io, kube_err};

/// Token of the static admin user (group `system:masters`).
const ADMIN_TOKEN_LEN: usize = 32;

/// A running etcd + kube-apiserver pair; stopped and removed on drop.
pub struct ControlPlane {
    // Field order is drop order: the API server stops before etcd.
    apiserver: Guarded,
    etcd: Guarded,
    /// The processes of the boots before a [`ControlPlane::reboot_onto`]: killed, their
    /// guardians waiting to remove the scratch dirs once the current ones have stopped.
    retired: Vec<Guarded>,
    layout: Layout,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    server: String,
}

/// Options for [`ControlPlane::start_with`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Where to keep the control plane's files; a fresh temp dir when `None`.
    pub base_dir: Option<PathBuf>,
    /// Install the lca.openshift.io CRDs (default true through [`ControlPlane::start`]).
    pub skip_crds: bool,
    /// etcd's data directory, kept when the control plane stops (a simulated node's
    /// `<stateroot>/var/lib/etcd`); a scratch dir inside the control plane's when `None`.
    pub etcd_data_dir: Option<PathBuf>,
}

/// What stays the same across a reboot: binaries, addresses, certificates, the token.
struct Layout {
    bin: PathBuf,
    root: PathBuf,
    etcd_port: u16,
    peer_port: u16,
    port: u16,
}

impl Layout {
    fn etcd_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.etcd_port)
    }

    fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }

    /// etcd on `data_dir`; `scratch` is removed with the process (a data dir of our own).
    fn spawn_etcd(&self, data_dir: &Path, scratch: Option<&Path>) -> Result<Guarded> {
        let (etcd_url, peer) = (self.etcd_url(), format!("http://127.0.0.1:{}", self.peer_port));
        Guarded::spawn(
            "etcd",
            &strings([
                self.bin.join("etcd").display().to_string(),
                "--name=lca".into(),
                format!("--data-dir={}", data_dir.display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster=lca={peer}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ]),
            &[],
            &self.root.join("etcd.log"),
            scratch,
        )
    }

    /// The serving certificate, service-account key and admin token; the admin token.
    fn write_pki(&self) -> Result<String> {
        let pki = self.pki();
        std::fs::create_dir_all(&pki).map_err(io("creating the pki dir"))?;
        let serving =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(|e| Error::Setup(format!("generating the serving certificate: {e}")))?;
        let sa_key = rcgen::KeyPair::generate()
            .map_err(|e| Error::Setup(format!("generating the service-account key: {e}")))?;
        let token = random_token()?;
        write(&pki.join("serving.crt"), &serving.cert.pem())?;
        write(&pki.join("serving.key"), &serving.signing_key.serialize_pem())?;
        write(&pki.join("sa.key"), &sa_key.serialize_pem())?;
        write(&pki.join("sa.pub"), &sa_key.public_key_pem())?;
        write(
            &pki.join("tokens.csv"),
            &format!("{token},lca-admin,lca-admin,system:masters\n"),
        )?;
        Ok(token)
    }

    /// The API server; `scratch` is removed with the process (the first boot's, so a killed
    /// test process leaves nothing behind).
    fn spawn_apiserver(&self, scratch: Option<&Path>) -> Result<Guarded> {
        let pki = self.pki();
        Guarded::spawn(
            "kube-apiserver",
            &strings([
                self.bin.join("kube-apiserver").display().to_string(),
                format!("--etcd-servers={}", self.etcd_url()),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={}", self.port),
                format!("--cert-dir={}", pki.display()),
                format!("--tls-cert-file={}", pki.join("serving.crt").display()),
                format!("--tls-private-key-file={}", pki.join("serving.key").display()),
                format!("--token-auth-file={}", pki.join("tokens.csv").display()),
                "--authorization-mode=RBAC".into(),
                format!("--service-account-key-file={}", pki.join("sa.pub").display()),
                format!(
                    "--service-account-signing-key-file={}",
                    pki.join("sa.key").display()
                ),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--disable-admission-plugins=ServiceAccount".into(),
                "--allow-privileged=true".into(),
                "--endpoint-reconciler-type=none".into(),
                "--v=0".into(),
            ]),
            &[],
            &self.root.join("kube-apiserver.log"),
            scratch,
        )
    }
}

impl ControlPlane {
    /// Start a control plane with our CRDs installed.
    pub async fn start() -> Result<Self> {
        Self::start_with(Options::default()).await
    }

    /// Start a control plane with `options`. Its ports are picked free just before the
    /// processes bind them; another process on the machine may take one in between, so a
    /// start that loses that race is tried again on fresh ports.
    pub async fn start_with(options: Options) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(&options).await {
                Err(Error::Setup(why))
                    if attempt < START_ATTEMPTS && why.contains("address already in use") =>
                {
                    tracing::warn!(attempt, "a control plane port was taken, starting again: {why}");
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn start_once(options: &Options) -> Result<Self> {
        let dir = match &options.base_dir {
            Some(base) => {
                std::fs::create_dir_all(base).map_err(io("creating the control plane dir"))?;
                tempfile::Builder::new().prefix("cp-").tempdir_in(base)
            }
            None => tempfile::Builder::new().prefix("lca-cp-").tempdir(),
        }
        .map_err(io("creating the control plane dir"))?;
        let layout = Layout {
            bin: assets::control_plane_dir()?,
            root: dir.path().to_path_buf(),
            etcd_port: free_port()?,
            peer_port: free_port()?,
            port: free_port()?,
        };
        let etcd = match &options.etcd_data_dir {
            Some(data) => layout.spawn_etcd(data, None)?,
            None => {
                let data = layout.root.join("etcd");
                layout.spawn_etcd(&data, Some(&data))?
            }
        };
        let token = layout.write_pki()?;
        // If this process dies without dropping us, the guardian removes everything.
        let apiserver = layout.spawn_apiserver(Some(&layout.root))?;
        let server = format!("https://127.0.0.1:{}", layout.port);
        let kubeconfig = layout.root.join("kubeconfig");
        write(
            &kubeconfig,
            &kubeconfig_yaml(&server, &layout.pki().join("serving.crt"), &token),
        )?;
        let mut cp = ControlPlane {
            apiserver,
            etcd,
            retired: Vec::new(),
            layout,
            dir,
            kubeconfig,
            server,
        };
        cp.wait_ready(Duration::from_secs(90)).await?;
        if !options.skip_crds {
            cp.install_crds(lca_api::crd::all().into_iter().map(|(_, crd)| crd).collect())
                .await?;
        }
        Ok(cp)
    }

    /// What a node's reboot does to its cluster: the API server and etcd stop at once, and
    /// come back on the same address, certificates and token, with etcd on `etcd_data_dir`
    /// (the now booted stateroot's `var/lib/etcd`). The data etcd ran on before is kept.
    pub async fn reboot_onto(&mut self, etcd_data_dir: &Path) -> Result<()> {
        self.kill_and_wait_gone().await?;
        let mut attempt = 1;
        loop {
            let etcd = self.layout.spawn_etcd(etcd_data_dir, None)?;
            self.retired.push(std::mem::replace(&mut self.etcd, etcd));
            let apiserver = self.layout.spawn_apiserver(None)?;
            self.retired
                .push(std::mem::replace(&mut self.apiserver, apiserver));
            match self.wait_ready(Duration::from_secs(90)).await {
                // As the kubelet restarts a static pod whose container exited, and so that a
                // slow host cannot fail a test on start-up order alone.
                Err(Error::Setup(why)) if attempt < START_ATTEMPTS => {
                    tracing::warn!(attempt, "control plane restart failed, retrying: {why}");
                    attempt += 1;
                    self.kill_and_wait_gone().await?;
                }
                done => return done,
            }
        }
    }

    /// An API server outage of `down` (etcd keeps running): the API server is killed, its
    /// port stays closed for `down`, then it comes back on the same address and certificates.
    pub async fn api_outage(&mut self, down: Duration) -> Result<()> {
        self.apiserver.signal(nix::sys::signal::Signal::SIGKILL);
        let start = Instant::now();
        while self.apiserver.child_present() || !port_free(self.layout.port) {
            if start.elapsed() > Duration::from_secs(20) {
                return Err(Error::Timeout {
                    what: "the API server to stop".into(),
                    secs: 20,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(down.saturating_sub(start.elapsed())).await;
        let apiserver = self.layout.spawn_apiserver(None)?;
        self.retired
            .push(std::mem::replace(&mut self.apiserver, apiserver));
        self.wait_ready(Duration::from_secs(90)).await
    }

    /// SIGKILL both processes and wait until they are reaped and their ports are free.
    async fn kill_and_wait_gone(&mut self) -> Result<()> {
        for p in [&self.apiserver, &self.etcd] {
            p.signal(nix::sys::signal::Signal::SIGKILL);
        }
        let limit = Duration::from_secs(20);
        let start = Instant::now();
        let ports = [self.layout.etcd_port, self.layout.peer_port, self.layout.port];
        while self.apiserver.child_present()
            || self.etcd.child_present()
            || !ports.iter().all(|p| port_free(*p))
        {
            if start.elapsed() > limit {
                return Err(Error::Timeout {
                    what: "the control plane to stop and free its ports".into(),
                    secs: limit.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Path of an admin kubeconfig for this control plane.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Directory holding the control plane's files and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An admin client.
    pub async fn client(&self) -> Result<Client> {
        client_for(&self.kubeconfig).await
    }

    /// Create CRDs and wait until each is Established.
    pub async fn install_crds(&self, crds: Vec<CustomResourceDefinition>) -> Result<()> {
        let client = self.client().await?;
        let api: Api<CustomResourceDefinition> = Api::all(client);
        for crd in &crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            match api.create(&PostParams::default(), crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(kube_err(format!("creating CRD {name}"))(e)),
            }
        }
        for crd in &crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let cond = kube::runtime::conditions::is_crd_established();
            let wait = kube::runtime::wait::await_condition(api.clone(), &name, cond);
            tokio::time::timeout(Duration::from_secs(30), wait)
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("CRD {name} to be Established"),
                    secs: 30,
                })?
                .map_err(|e| Error::Setup(format!("waiting for CRD {name}: {e}")))?;
        }
        Ok(())
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let client = self.client().await?;
        loop {
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(|e| Error::Setup(e.to_string()))?;
            if let Ok(body) = client.request_text(req).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            if !self.apiserver.child_alive() || !self.etcd.child_alive() {
                return Err(Error::Setup(format!(
                    "the control plane exited during start-up\n--- etcd ---\n{}\n--- kube-apiserver ---\n{}",
                    self.etcd.log_tail(20),
                    self.apiserver.log_tail(40)
                )));
            }
            if start.elapsed() > limit {
                return Err(Error::Timeout {
                    what: format!("{}/readyz", self.server),
                    secs: limit.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A client for a kubeconfig file, ignoring the environment.
pub async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let kc =
        Kubeconfig::read_from(kubeconfig).map_err(|e| Error::Setup(format!("reading kubeconfig: {e}")))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Setup(format!("loading kubeconfig: {e}")))?;
    Client::try_from(config).map_err(kube_err("building a client"))
}

fn kubeconfig_yaml(server: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lca-local\n  cluster:\n    server: {server}\n    certificate-authority: {}\nusers:\n- name: lca-admin\n  user:\n    token: {token}\ncontexts:\n- name: lca-local\n  context:\n    cluster: lca-local\n    user: lca-admin\ncurrent-context: lca-local\n",
        ca.display()
    )
}

/// How often [`ControlPlane::reboot_onto`] starts the pair before it gives up.
const START_ATTEMPTS: u32 = 3;

/// True when nothing listens on `port` (a listener binds with SO_REUSEADDR, as Go's do).
fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener.local_addr().map_err(io("finding a free port"))?.port())
}

fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; ADMIN_TOKEN_LEN / 2];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io("reading /dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(io(format!("writing {}", path.display())))
}

fn strings<const N: usize>(items: [String; N]) -> Vec<String> {
    items.into()
}
