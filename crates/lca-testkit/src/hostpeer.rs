//! The host-services test peer: the node services that `lca-cli post-pivot` and the operator
//! drive (systemctl, hostnamectl, nmstatectl, update-ca-trust, pvscan, crictl, the recert
//! containers, the node's image storage) must never act on the machine running the tests.
//! On a simulated node they are executables in `lca-sim/bin`, first in the PATH of
//! everything that runs on the node: each records its argv (one line, words joined by
//! spaces, in `lca-sim/host-services.log`, and with its start time in
//! `lca-sim/host-services.timed`) and applies its effect inside the node directory (a unit
//! enabled is a `multi-user.target.wants` link, a hostname is `etc/hostname`, recert's
//! config is kept in `lca-sim/recert_config.json`). Every other podman command runs the
//! real podman.

use std::path::{Path, PathBuf};

use crate::{Result, write_executable};

/// The peer's log of one simulated node.
pub fn log_path(root: &Path) -> PathBuf {
    root.join("lca-sim/host-services.log")
}

/// The commands the peer ran so far, each as its argv joined by spaces.
pub fn calls(root: &Path) -> Vec<String> {
    std::fs::read_to_string(log_path(root))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `RECERT_CONFIG` paths of the recert containers the peer ran so far, in order.
pub fn recert_configs(root: &Path) -> Vec<String> {
    calls(root)
        .into_iter()
        .filter_map(|c| {
            c.split_whitespace()
                .find_map(|w| w.strip_prefix("RECERT_CONFIG=").map(String::from))
        })
        .collect()
}

/// The commands the peer ran so far with the Unix time (seconds) each started at.
pub fn timed_calls(root: &Path) -> Vec<(f64, String)> {
    std::fs::read_to_string(root.join("lca-sim/host-services.timed"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (t, call) = l.split_once(' ')?;
            Some((t.parse().ok()?, call.to_string()))
        })
        .collect()
}

/// Install the peer into `root/lca-sim/bin`.
pub fn install(root: &Path) -> Result<()> {
    let bin = root.join("lca-sim/bin");
    let r = root.display();
    // A test makes a host service fail by creating `lca-sim/fail/<tool>`, and holds its
    // calls whose argv contains the text of `lca-sim/hold/<tool>` (logged, not answered
    // yet) until that file is removed.
    let log = format!(
        "echo \"$(basename \"$0\") $*\" >> '{r}/lca-sim/host-services.log'\n\
         echo \"$(date +%s.%N) $(basename \"$0\") $*\" >> '{r}/lca-sim/host-services.timed'\n\
         [ -e '{r}/lca-sim/fail/'\"$(basename \"$0\")\" ] && {{ echo \"$(basename \"$0\"): simulated failure\" >&2; exit 1; }}\n\
         h='{r}/lca-sim/hold/'\"$(basename \"$0\")\"\n\
         while [ -e \"$h\" ] && case \" $* \" in *\"$(cat \"$h\" 2>/dev/null)\"*) true ;; *) false ;; esac; do sleep 0.05; done\n"
    );
    let wants = format!("{r}/etc/systemd/system/multi-user.target.wants");
    // A long-running unit the boot harness started has its pid in `lca-sim/units/<unit>.pid`;
    // a unit with `lca-sim/hang/<unit>` never stops.
    let pid = format!("'{r}/lca-sim/units/'\"$unit\".pid");
    write_executable(
        &bin.join("systemctl"),
        &format!(
            "#!/bin/sh\n{log}\
             unit=\"\"; for a in \"$@\"; do case \"$a\" in -*) ;; *) unit=\"$a\" ;; esac; done\n\
             case \"$unit\" in *.*) ;; *) unit=\"$unit.service\" ;; esac\n\
             case \"$1\" in\n\
               enable) mkdir -p '{wants}' && ln -sfn \"/etc/systemd/system/$unit\" '{wants}'/\"$unit\" ;;\n\
               disable) rm -f '{wants}'/\"$unit\" ;;\n\
               is-active) if [ \"$unit\" = var-lib-containers.mount ] || {{ [ -f {pid} ] && kill -0 \"$(cat {pid})\" 2>/dev/null; }}; then echo active; else echo inactive; exit 3; fi ;;\n\
               stop) [ -e '{r}/lca-sim/hang/'\"$unit\" ] && exec sleep 3600\n\
                     if [ -f {pid} ]; then kill \"$(cat {pid})\" 2>/dev/null; rm -f {pid}; fi ;;\n\
               is-enabled) if [ -L '{wants}'/\"$unit\" ]; then echo enabled; else echo disabled; exit 1; fi ;;\n\
               cat) printf '[Mount]\\nWhat=/dev/disk/by-partlabel/varlibcontainers\\nWhere=/var/lib/containers\\n' ;;\n\
             esac\nexit 0\n"
        ),
    )?;
    write_executable(
        &bin.join("hostnamectl"),
        &format!("#!/bin/sh\n{log}[ \"$1\" = set-hostname ] && echo \"$2\" > '{r}/etc/hostname'\nexit 0\n"),
    )?;
    for tool in ["nmstatectl", "update-ca-trust", "pvscan"] {
        write_executable(&bin.join(tool), &format!("#!/bin/sh\n{log}exit 0\n"))?;
    }
    // The recert containers and the node's CRI-O image storage (whose list is
    // `lca-sim/images.list`) are the peer's; any other podman command runs the real podman.
    // Each recert config is kept, in order, as `lca-sim/recert/<n>.json` (the latest also as
    // `lca-sim/recert_config.json`); `lca-sim/fail/recert` fails the recert container only,
    // as an image that cannot be pulled would.
    write_executable(
        &bin.join("podman"),
        &format!(
            "#!/bin/sh\n\
             case \" $* \" in\n\
               *' recert'*|*' recert_etcd'*|' image prune '*|' rmi '*) ;;\n\
               *) exec /usr/bin/podman \"$@\" ;;\n\
             esac\n{log}\
             for a in \"$@\"; do case \"$a\" in RECERT_CONFIG=*)\n\
               [ -e '{r}/lca-sim/fail/recert' ] && {{ echo 'Error: initializing source docker://recert: reading manifest: unauthorized' >&2; exit 125; }}\n\
               mkdir -p '{r}/lca-sim/recert'; n=$(( $(ls '{r}/lca-sim/recert' | wc -l) + 1 ))\n\
               cp '{r}'\"${{a#RECERT_CONFIG=}}\" '{r}/lca-sim/recert/'$n.json\n\
               cp '{r}'\"${{a#RECERT_CONFIG=}}\" '{r}/lca-sim/recert_config.json' ;; esac; done\n\
             exit 0\n"
        ),
    )?;
    write_executable(
        &bin.join("crictl"),
        &format!(
            "#!/bin/sh\n{log}\
             case \"$1\" in\n\
               images) printf '{{\"images\":['; sep=''\n\
                 [ -f '{r}/lca-sim/images.list' ] && while read -r i; do [ -n \"$i\" ] && printf '%s{{\"repoTags\":[\"%s\"]}}' \"$sep\" \"$i\" && sep=','; done < '{r}/lca-sim/images.list'\n\
                 printf ']}}\\n' ;;\n\
             esac\nexit 0\n"
        ),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(root: &Path, argv: &[&str]) -> bool {
        std::process::Command::new(root.join("lca-sim/bin").join(argv[0]))
            .args(&argv[1..])
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn records_commands_and_applies_their_effects_in_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        install(root).unwrap();
        let wants = root.join("etc/systemd/system/multi-user.target.wants");
        assert!(run(root, &["systemctl", "enable", "kubelet", "--now"]));
        assert!(wants.join("kubelet.service").is_symlink());
        assert!(run(root, &["systemctl", "is-enabled", "kubelet.service"]));
        assert!(run(root, &["systemctl", "disable", "kubelet.service"]));
        assert!(!wants.join("kubelet.service").is_symlink());
        assert!(!run(root, &["systemctl", "is-active", "chronyd"]));
        assert!(run(root, &["hostnamectl", "set-hostname", "node1"]));
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "node1\n"
        );
        assert_eq!(
            calls(root),
            [
                "systemctl enable kubelet --now",
                "systemctl is-enabled kubelet.service",
                "systemctl disable kubelet.service",
                "systemctl is-active chronyd",
                "hostnamectl set-hostname node1",
            ]
        );
    }

    #[test]
    fn crictl_lists_the_node_images_and_calls_are_timed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        install(root).unwrap();
        let crictl = root.join("lca-sim/bin/crictl");
        let list = || {
            let out = std::process::Command::new(&crictl)
                .args(["images", "-o", "json"])
                .output()
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        assert_eq!(list(), serde_json::json!({"images": []}));
        std::fs::write(
            root.join("lca-sim/images.list"),
            "quay.io/a:1\n\nquay.io/b@sha256:2\n",
        )
        .unwrap();
        assert_eq!(
            list(),
            serde_json::json!({"images": [{"repoTags": ["quay.io/a:1"]}, {"repoTags": ["quay.io/b@sha256:2"]}]})
        );
        let timed = timed_calls(root);
        assert_eq!(timed.len(), 2);
        assert!(timed[0].0 <= timed[1].0 && timed[0].0 > 1.7e9, "{timed:?}");
        assert_eq!(timed[1].1, "crictl images -o json");
    }

    #[test]
    fn a_flagged_tool_fails_and_stop_ends_a_running_unit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        install(root).unwrap();
        std::fs::create_dir_all(root.join("lca-sim/fail")).unwrap();
        std::fs::write(root.join("lca-sim/fail/hostnamectl"), "").unwrap();
        assert!(!run(root, &["hostnamectl", "set-hostname", "node1"]));
        assert!(!root.join("etc/hostname").exists());
        assert!(run(root, &["nmstatectl", "apply"]), "only the flagged tool fails");

        let mut unit = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        std::fs::create_dir_all(root.join("lca-sim/units")).unwrap();
        std::fs::write(root.join("lca-sim/units/m.service.pid"), unit.id().to_string()).unwrap();
        assert!(run(root, &["systemctl", "is-active", "m.service"]));
        assert!(run(root, &["systemctl", "stop", "m.service"]));
        assert!(!unit.wait().unwrap().success(), "stopped by a signal");
        assert!(!run(root, &["systemctl", "is-active", "m.service"]));
    }
}
