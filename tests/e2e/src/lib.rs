//! Shared helpers of the end-to-end tests: a control plane + simulated node + operator
//! "cluster", `kubectl` runs against it, and polling for the IBU status.

pub mod campaign;
pub mod prep;
pub mod upgrade;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_testkit::{ControlPlane, OperatorProcess};

/// A loopback control plane, a simulated node directory and (optionally) the operator.
pub struct Cluster {
    pub operator: Option<OperatorProcess>,
    pub node: tempfile::TempDir,
    /// A simulated SNO node with a real ostree sysroot, when the test needs one.
    pub target: Option<lca_testkit::seednode::TargetNode>,
    pub cp: ControlPlane,
    pub client: Client,
    /// The long-running units of the node's current boot (the init monitor); a reboot ends
    /// them.
    pub units: Option<lca_testkit::units::Boot>,
}

impl Cluster {
    /// Control plane with our CRDs and an empty simulated node; no operator yet.
    pub async fn start() -> Self {
        Self::start_with(Default::default()).await
    }

    /// As `start`, with the control plane's `options` (etcd's data in a node's stateroot).
    pub async fn start_with(options: lca_testkit::controlplane::Options) -> Self {
        let cp = ControlPlane::start_with(options)
            .await
            .expect("control plane starts");
        let client = cp.client().await.expect("admin client");
        let node = tempfile::Builder::new()
            .prefix("lca-node-")
            .tempdir()
            .expect("node dir");
        Self {
            operator: None,
            node,
            target: None,
            cp,
            client,
            units: None,
        }
    }

    /// Control plane, simulated node and a running operator.
    pub async fn with_operator() -> Self {
        let mut c = Self::start().await;
        c.start_operator();
        c
    }

    pub fn node_root(&self) -> &Path {
        self.target.as_ref().map_or(self.node.path(), |t| t.root())
    }

    pub fn operator_log_path(&self) -> PathBuf {
        self.cp.dir().join("operator.log")
    }

    /// Control plane, simulated node and an operator whose stage work is the scripted test
    /// peer (`--stage-work=test-peer`).
    pub async fn with_test_peer() -> Self {
        let mut c = Self::start().await;
        c.start_operator_with(&["--stage-work=test-peer"]);
        c
    }

    /// Start the operator with the ServiceAccount and RBAC of `config/rbac/`.
    pub fn start_operator(&mut self) {
        self.start_operator_with(&[]);
    }

    /// As `start_operator`, with extra arguments.
    pub fn start_operator_with(&mut self, args: &[&str]) {
        let kubeconfig = lca_testkit::rbac::operator_kubeconfig(&self.cp).expect("operator RBAC installs");
        // The node under test is always a directory standing in for a node.
        let mut args = args.to_vec();
        if !args.iter().any(|a| a.starts_with("--node")) {
            args.push("--node=simulated");
        }
        let args = args.as_slice();
        let op =
            OperatorProcess::start_with_args(&kubeconfig, self.node_root(), &self.operator_log_path(), args)
                .expect("operator starts");
        self.operator = Some(op);
    }

    /// As `start_operator`, restarted whenever it exits (as the kubelet restarts its pod).
    pub fn start_operator_supervised(&mut self) {
        let kubeconfig = lca_testkit::rbac::operator_kubeconfig(&self.cp).expect("operator RBAC installs");
        let pid_file = self.cp.dir().join("operator.pid");
        let op = OperatorProcess::start_supervised(
            &kubeconfig,
            self.node_root(),
            &self.operator_log_path(),
            &pid_file,
            &["--node=simulated"],
        )
        .expect("operator starts");
        self.operator = Some(op);
    }

    pub fn ibus(&self) -> Api<ImageBasedUpgrade> {
        Api::all(self.client.clone())
    }

    /// Run kubectl against this cluster; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.cp.kubeconfig().display()))
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Apply a YAML document with kubectl (stdin).
    pub fn kubectl_apply(&self, yaml: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.cp.kubeconfig().display()))
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(yaml.as_bytes())
            .expect("write yaml");
        let out = child.wait_with_output().expect("kubectl finishes");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Poll the IBU until `pred` holds; panics with the last object and the operator log.
    pub async fn wait_ibu(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&ImageBasedUpgrade) -> bool,
    ) -> ImageBasedUpgrade {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < limit {
            if let Ok(Some(ibu)) = self.ibus().get_opt("upgrade").await {
                if pred(&ibu) {
                    return ibu;
                }
                last = Some(ibu);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.operator_log_path()).unwrap_or_default();
        panic!(
            "timed out waiting for {what}; last IBU: {:#?}\n--- operator log ---\n{log}",
            last.map(|i| i.status)
        );
    }
}

impl Cluster {
    /// The address the running operator logged with `message`.
    fn logged_addr(&self, message: &str) -> String {
        let log = std::fs::read_to_string(self.operator_log_path()).unwrap_or_default();
        log.lines()
            .rev()
            .filter(|l| l.contains(message))
            .find_map(|l| {
                l.split("\"addr\":\"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("the operator logged no {message:?} address"))
    }

    /// GET `path` from the operator's HTTPS metrics endpoint with `token` as the bearer
    /// token, as a scraper would: the HTTP status and the body. The certificate is not
    /// checked (the operator made a self-signed one: no cert dir in the tests).
    pub fn scrape(&self, path: &str, token: Option<&str>) -> (u16, String) {
        self.scrape_trusting(path, token, None)
    }

    /// As `scrape`, checking the server's certificate against `ca` when one is given (status
    /// 0 and curl's error: no HTTP answer, a failed TLS handshake for one).
    pub fn scrape_trusting(&self, path: &str, token: Option<&str>, ca: Option<&Path>) -> (u16, String) {
        let addr = self.logged_addr("metrics listening (https)");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"]);
        match ca {
            Some(ca) => cmd.arg("--cacert").arg(ca),
            None => cmd.arg("-k"),
        };
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let out = cmd
            .arg(format!("https://{addr}{path}"))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        match code.trim().parse() {
            Ok(0) | Err(_) => (0, String::from_utf8_lossy(&out.stderr).into_owned()),
            Ok(code) => (code, body.to_string()),
        }
    }

    /// A token of the ServiceAccount `name` in `default` (a scraper's identity). The account
    /// is created, and bound to `cluster_role` when one is given, only if it does not exist
    /// yet; an existing one keeps its bindings.
    pub fn account_token(&self, name: &str, cluster_role: Option<&str>) -> String {
        let (ok, _, err) = self.kubectl(&["create", "serviceaccount", name, "-n", "default"]);
        assert!(ok || err.contains("already exists"), "{err}");
        if let Some(role) = cluster_role.filter(|_| ok) {
            let subject = format!("default:{name}");
            let (ok, _, err) = self.kubectl(&[
                "create",
                "clusterrolebinding",
                name,
                &format!("--clusterrole={role}"),
                &format!("--serviceaccount={subject}"),
            ]);
            assert!(ok, "{err}");
        }
        let (ok, token, err) = self.kubectl(&["create", "token", name, "-n", "default"]);
        assert!(ok, "{err}");
        token.trim().to_string()
    }

    /// The metrics text as a scraper bound to `lifecycle-agent-metrics-reader` reads it.
    pub fn metrics(&self) -> String {
        let token = self.account_token("metrics-reader", Some("lifecycle-agent-metrics-reader"));
        let (code, body) = self.scrape("/metrics", Some(&token));
        assert_eq!(code, 200, "{body}");
        body
    }

    /// GET `path` from the operator's probe listener (its address is in the operator log).
    pub fn probe(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.logged_addr("health probes listening");
        // Like the kubelet's probes, retry a failed connection a few times.
        let mut last_err = None;
        for _ in 0..5 {
            let attempt = (|| -> std::io::Result<String> {
                let mut stream = std::net::TcpStream::connect(&addr)?;
                // One write: the probe server answers what its first read holds, and
                // `write!` may send the request in pieces.
                stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())?;
                let mut out = String::new();
                stream.read_to_string(&mut out)?;
                Ok(out)
            })();
            match attempt {
                Ok(out) => return out,
                Err(e) => last_err = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("probe {path} on {addr} failed: {last_err:?}");
    }

    /// The last `n` lines of the operator's log, and of every node task's log.
    pub fn operator_log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.operator_log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
        let tasks = self.node_root().join("var/lib/lca/workspace/tasks");
        for entry in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let log = std::fs::read_to_string(entry.path().join("log")).unwrap_or_default();
            out.push_str(&format!(
                "\n--- task {} ---\n{log}",
                entry.file_name().to_string_lossy()
            ));
        }
        out
    }

    /// Script the test peer: `name` is prep/upgrade/rollback/abort/finalize.
    pub fn script(&self, name: &str, content: &str) {
        let dir = self.node_root().join("lca-sim/stage-work");
        std::fs::create_dir_all(&dir).expect("script dir");
        std::fs::write(dir.join(name), content).expect("write script");
    }

    /// What the test peer was asked to do so far, one entry per call.
    pub fn peer_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.node_root().join("lca-sim/stage-work/calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Simulate having booted into `stateroot`.
    pub fn boot(&self, stateroot: &str) {
        let paths = lca_hostops::HostPaths::new(self.node_root());
        let booted = lca_hostops::sim::BootedRef {
            stateroot: stateroot.into(),
            checksum: "0".repeat(64),
            serial: 0,
        };
        lca_hostops::sim::set_booted(&paths, booted).expect("write simulated boot state");
    }

    /// `kubectl patch ibu upgrade --type=merge -p {"spec":{"stage":<stage>}}`; returns (ok, stderr).
    pub fn patch_stage(&self, stage: &str) -> (bool, String) {
        let patch = format!(r#"{{"spec":{{"stage":"{stage}"}}}}"#);
        let (ok, _, err) = self.kubectl(&["patch", "ibu", "upgrade", "--type=merge", "-p", &patch]);
        (ok, err)
    }
}

/// True when the IBU has condition `type_` with `status`.
pub fn has(ibu: &ImageBasedUpgrade, type_: &str, status: &str) -> bool {
    condition(ibu, type_).is_some_and(|c| c.0 == status)
}

/// The condition of `type_` on an IBU, as (status, reason, message).
pub fn condition(ibu: &ImageBasedUpgrade, type_: &str) -> Option<(String, String, String)> {
    ibu.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}
