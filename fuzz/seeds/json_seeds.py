#!/usr/bin/env python3
"""Writes the hand-made seed-* inputs of the fuzz targets on text and JSON
(extra_manifests, seed_labels, seed_reconfiguration, ibu_json, autorollback_config) into
fuzz/corpus/<target>/. The files are committed; this script says how they were made and
remakes them byte for byte: `python3 fuzz/seeds/json_seeds.py` from the repository root.
The input layouts are the ones fuzz/src/*checks.rs split: 0xFE between ConfigMaps and
0xFF between values (extra_manifests); 0xFF between labels, manifest.json and cluster
facts (seed_labels)."""

import json
import os
import sys

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
CM, VAL = b"\xfe", b"\xff"
FORMAT = "com.openshift.lifecycle-agent.seed_format_version"
INFO = "com.openshift.lifecycle-agent.seed_cluster_info"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, bytes):
        data = json.dumps(data, indent=1).encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def obj(kind, name, wave=None, ns=None, api="v1"):
    meta = "{name: %s%s%s}" % (
        name,
        ", namespace: %s" % ns if ns else "",
        ", annotations: {lca.openshift.io/apply-wave: %s}" % json.dumps(wave) if wave is not None else "",
    )
    return "apiVersion: %s\nkind: %s\nmetadata: %s\n" % (api, kind, meta)


def extra_manifests():
    t = "extra_manifests"
    ns = obj("Namespace", "sriov-apps", wave="1")
    policy = obj("SriovNetworkNodePolicy", "policy-a", wave="10", ns="openshift-sriov-network-operator",
                 api="sriovnetwork.openshift.io/v1")
    net = obj("SriovNetwork", "net-a", wave="20", ns="openshift-sriov-network-operator",
              api="sriovnetwork.openshift.io/v1")
    cm = obj("ConfigMap", "cm-nowave", ns="sriov-apps")
    write(t, "two-configmaps-waves",
          (ns + "---\n" + cm).encode() + VAL + net.encode() + CM + policy.encode() + VAL + b"")
    write(t, "four-configmaps", CM.join(obj("ConfigMap", "same", wave="5", ns="ns%d" % i).encode()
                                          for i in range(4)))
    write(t, "more-than-four", CM.join(obj("Secret", "s%d" % i).encode() for i in range(6)))
    write(t, "wave-ties", CM.join([
        (obj("A", "b", wave="2") + "---\n" + obj("A", "a", wave="2")).encode(),
        (obj("B", "a", wave="2") + "---\n" + obj("B", "b", wave=" 2 ")).encode(),
    ]))
    write(t, "bad-wave-second", obj("A", "ok", wave="1").encode() + CM + obj("A", "bad", wave="one").encode()
          + VAL + obj("A", "float", wave=1.5).encode() + VAL + obj("A", "big", wave="99999999999999999999").encode())
    write(t, "syntax-error-one", obj("A", "good").encode() + CM + b"a: [1, 2\n---\n" + obj("A", "lost").encode()
          + VAL + obj("A", "after").encode())
    write(t, "not-objects", b"- a\n- b\n" + CM + b"just a string\n" + VAL + b"42\n" + CM + b"---\n---\n~\n")
    write(t, "empty-configmaps", CM * 3)
    write(t, "json-and-yaml", json.dumps({"apiVersion": "v1", "kind": "Service",
                                          "metadata": {"name": "svc", "uid": "u", "resourceVersion": "7"}}).encode()
          + CM + b"\xef\xbb\xbf" + obj("A", "bom").encode())
    # The global cap: 3000 + 3000 objects in two ConfigMaps, then a third; cut at 5000.
    # Exactly 1000 documents a value: a trailing `---` would start a 1001st.
    thousand = b"{}\n---\n" * 999 + b"{}\n"
    write(t, "global-cap", CM.join([VAL.join([thousand] * 3), VAL.join([thousand] * 3), b"{}\n"]))
    # A value that does not fit the room left is dropped whole; later, smaller ones still fit.
    docs = lambda n: b"{}\n---\n" * (n - 1) + b"{}\n"
    write(t, "global-cap-mid-value", CM.join([VAL.join([thousand] * 3 + [docs(500)]),
                                              VAL.join([thousand, thousand, docs(400)]), docs(200)]))
    write(t, "document-cap-second", b"{}\n" + CM + b"---\n{}\n" * 1001)
    write(t, "invalid-utf8", b"kind: \xc3\x28\n" + CM + b"metadata: {name: \xff\xfe}\n")


def facts(**kw):
    lines = []
    for k, v in kw.items():
        lines.append(k if v is True else "%s=%s" % (k, v))
    return "\n".join(lines).encode()


def labels_json(version="4", info=None, extra=None):
    m = {}
    if version is not None:
        m[FORMAT] = version
    if info is not None:
        m[INFO] = info if isinstance(info, str) else json.dumps(info)
    m.update(extra or {})
    return json.dumps(m).encode()


def seed_labels():
    t = "seed_labels"
    info = {"seed_cluster_ocp_version": "4.18.1", "base_domain": "example.com", "cluster_name": "seed",
            "node_ips": ["192.168.1.20"], "has_proxy": False, "has_fips": False,
            "additionalTrustBundle": {"hasUserCaBundle": False, "proxyConfigmapName": ""},
            "container_storage_mountpoint_target": "/var/lib/containers",
            "machine_networks": ["192.168.1.0/24"]}
    cluster = facts(storage="/var/lib/containers", node_ips="192.168.1.30", machine_networks="192.168.1.0/24")
    write(t, "json-ok", labels_json(info=info) + VAL + VAL + cluster)
    write(t, "lines-ok", ("%s=4\n%s=%s\n" % (FORMAT, INFO, json.dumps(info))).encode() + VAL + VAL + cluster)
    write(t, "manifest-as-info", labels_json() + VAL + json.dumps(info).encode() + VAL + cluster)
    write(t, "missing-version", labels_json(version=None, info=info))
    for name, v in [("version-3", "3"), ("version-spaces", " 4 \n"), ("version-04", "04"), ("version-empty", "")]:
        write(t, name, labels_json(version=v))
    write(t, "version-number", b'{"%s": 4}' % FORMAT.encode())
    write(t, "garbled-info", labels_json(info='{"has_proxy": tru'))
    write(t, "info-wrong-types", labels_json(info='{"has_proxy": "yes", "node_ips": "10.0.0.1"}'))
    write(t, "proxy-seed-only", labels_json(info={"has_proxy": True}))
    write(t, "proxy-cluster-only", labels_json(info={}) + VAL + VAL + facts(proxy=True))
    write(t, "fips-seed-only", labels_json(info={"has_fips": True}) + VAL + VAL + facts(fips=True, proxy=True))
    write(t, "fips-cluster-only", labels_json(info={}) + VAL + VAL + facts(fips=True))
    bundle = {"additionalTrustBundle": {"hasUserCaBundle": True, "proxyConfigmapName": "custom-ca"}}
    write(t, "bundle-ok", labels_json(info=bundle) + VAL + VAL
          + facts(user_ca_bundle=True, trusted_ca="custom-ca", trusted_ca_content=True))
    write(t, "bundle-empty-ca", labels_json(info=bundle) + VAL + VAL + facts(user_ca_bundle=True, trusted_ca="custom-ca"))
    write(t, "bundle-name-mismatch", labels_json(info=bundle) + VAL + VAL
          + facts(user_ca_bundle=True, trusted_ca="user-ca-bundle"))
    write(t, "bundle-user-ca-only-cluster", labels_json(info={"additionalTrustBundle": {}}) + VAL + VAL
          + facts(user_ca_bundle=True))
    write(t, "storage-mismatch", labels_json(info={"container_storage_mountpoint_target": "/sysroot/c"})
          + VAL + VAL + facts(storage="/var/lib/containers"))
    dual = {"node_ips": ["192.168.1.20", "fd00::20"], "machine_networks": ["192.168.1.0/24", "fd00::/64"]}
    write(t, "dual-stack-ok", labels_json(info=dual) + VAL + VAL
          + facts(node_ips="10.0.0.5,fd01::5", machine_networks="10.0.0.0/16,fd01::/64"))
    write(t, "stack-mismatch", labels_json(info=dual) + VAL + VAL + facts(node_ips="10.0.0.5"))
    write(t, "family-mismatch", labels_json(info={"node_ip": "192.168.1.20"}) + VAL + VAL + facts(node_ips="fd00::1"))
    write(t, "invalid-ips", labels_json(info={"node_ips": ["not-an-ip"]}) + VAL + VAL
          + facts(node_ips="10.0.0.1/33x", machine_networks="zz"))
    write(t, "machine-networks-mismatch", labels_json(info={"node_ips": ["10.0.0.1"], "machine_networks": ["fd00::/64"]})
          + VAL + VAL + facts(node_ips="10.0.0.2", machine_networks="10.0.0.0/8"))
    write(t, "node-network-family-mismatch", labels_json(info={}) + VAL + VAL
          + facts(node_ips="10.0.0.2", machine_networks="fd00::/64"))
    write(t, "empty", b"")
    write(t, "non-string-values", b'{"%s": ["4"], "%s": {"has_proxy": false}}' % (FORMAT.encode(), INFO.encode()))
    write(t, "manifest-garbled", labels_json() + VAL + b'{"node_ips": [1, 2]' + VAL)
    write(t, "invalid-utf8", labels_json() + b"\xc3" + VAL + b"\xff\xfe" + VAL + b"node_ips=\xe2\x82")


def seed_reconfiguration():
    t = "seed_reconfiguration"
    full = {
        "api_version": 1, "base_domain": "example.com", "cluster_name": "sno", "cluster_id": "0b7c9d3e",
        "infra_id": "sno-x7k2p", "node_ip": "192.168.1.30", "node_ips": ["192.168.1.30", "fd00::30"],
        "release_registry": "quay.io", "hostname": "sno.example.com",
        "KubeconfigCryptoRetention": {
            "KubeAPICrypto": {"ServingCrypto": {"localhost_signer_private_key": "-----BEGIN EC PRIVATE KEY-----\n",
                                                "service_network_signer_private_key": "k2",
                                                "loadbalancer_external_signer_private_key": "k3"},
                              "ClientAuthCrypto": {"admin_ca_certificate": "-----BEGIN CERTIFICATE-----\n"}},
            "IngresssCrypto": {"ingress_ca": "ca", "ingress_certificate_cn": "ingress-operator@1700000000"}},
        "ssh_key": "ssh-ed25519 AAAA", "server_ssh_keys": [{"file_name": "ssh_host_ed25519_key", "file_content": "x"}],
        "kubeadmin_password_hash": "$2a$10$abc", "raw_nm_state_config": "interfaces: []\n",
        "pull_secret": '{"auths":{}}', "machine_network": "192.168.1.0/24",
        "machine_networks": ["192.168.1.0/24", "fd00::/64"],
        "proxy": {"httpProxy": "http://proxy:3128", "httpsProxy": "http://proxy:3128", "noProxy": ".cluster.local"},
        "status_proxy": {"noProxy": "10.0.0.0/16"}, "install_config": "apiVersion: v1\n", "chrony_config": "pool x\n",
        "additionalTrustBundle": {"userCaBundle": "pem", "proxyConfigmapName": "user-ca-bundle",
                                  "proxyConfigmapBundle": "pem"},
        "node_labels": {"node-role.kubernetes.io/worker": "", "zone": "a"},
    }
    write(t, "full", full)
    write(t, "minimal", b'{"api_version":1}')
    write(t, "version-2", b'{"api_version":2,"cluster_name":"x"}')
    write(t, "version-missing", b'{"cluster_name":"x"}')
    write(t, "version-negative", b'{"api_version":-9223372036854775808}')
    write(t, "version-float", b'{"api_version":1.0}')
    write(t, "version-string", b'{"api_version":"1"}')
    write(t, "unknown-keys", b'{"api_version":1,"future_key":{"a":[1,2,{"b":null}]},"status_proxy":null}')
    write(t, "duplicate-key", b'{"api_version":1,"cluster_name":"a","cluster_name":"b"}')
    write(t, "wrong-types", b'{"api_version":1,"node_ips":"10.0.0.1","node_labels":[]}')
    write(t, "escapes", b'{"api_version":1,"cluster_name":"\\u00e9\\ud83d\\ude00\\u0000","hostname":"\\ud800"}')
    write(t, "deep-unknown", b'{"api_version":1,"x":' + b"[" * 200 + b"]" * 200 + b"}")
    write(t, "garbled", b'{"api_version":1,')
    write(t, "not-object", b"[1]")
    write(t, "trailing", b'{"api_version":1} {}')


def ibu_json():
    t = "ibu_json"
    cond = lambda typ, status, reason, msg, at: {"type": typ, "status": status, "reason": reason, "message": msg,
                                                 "lastTransitionTime": at, "observedGeneration": 3}
    saved = {
        "apiVersion": "lca.openshift.io/v1", "kind": "ImageBasedUpgrade",
        "metadata": {"name": "upgrade", "generation": 3, "uid": "7f9c", "resourceVersion": "12345",
                     "creationTimestamp": "2024-05-01T10:00:00Z",
                     "annotations": {"auto-rollback-on-failure.lca.openshift.io/post-reboot-config": "Disabled"},
                     "managedFields": [{"manager": "lca", "operation": "Update", "apiVersion": "lca.openshift.io/v1",
                                        "time": "2024-05-01T10:00:00.123456Z", "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:spec": {"f:stage": {}}}}]},
        "spec": {"stage": "Upgrade", "seedImageRef": {"version": "4.18.1", "image": "quay.io/seed:4.18.1",
                                                      "pullSecretRef": {"name": "seed-pull-secret"}},
                 "oadpContent": [{"name": "oadp-cm", "namespace": "openshift-adp"}],
                 "extraManifests": [{"name": "extra", "namespace": "openshift-lifecycle-agent"}],
                 "autoRollbackOnFailure": {"initMonitorTimeoutSeconds": 600}},
        "status": {"observedGeneration": 3, "startedAt": "2024-05-01T10:01:00Z",
                   "conditions": [cond("Idle", "False", "InProgress", "In progress", "2024-05-01T10:01:00Z"),
                                  cond("PrepInProgress", "False", "Completed", "Prep completed", "2024-05-01T10:05:00Z"),
                                  cond("PrepCompleted", "True", "Completed", "Prep stage completed successfully",
                                       "2024-05-01T10:05:00.999Z"),
                                  cond("UpgradeInProgress", "True", "InProgress", "In progress",
                                       "2024-05-01T10:06:00+02:00")],
                   "validNextStages": ["Rollback"],
                   "history": [{"stage": "Prep", "startTime": "2024-05-01T10:01:00Z",
                                "completionTime": "2024-05-01T10:05:00Z",
                                "phases": [{"phase": "Precache", "startTime": "2024-05-01T10:02:00Z"}]}]},
    }
    write(t, "saved-upgrade", saved)
    write(t, "minimal", b'{"metadata":{},"spec":{}}')
    write(t, "no-spec", b'{"metadata":{"name":"upgrade"}}')
    write(t, "monitor-disabled", {"metadata": {"annotations": {
        "auto-rollback-on-failure.lca.openshift.io/init-monitor": "Disabled"}}, "spec": {
        "autoRollbackOnFailure": {"initMonitorTimeoutSeconds": -5}}})
    write(t, "fractional-times", b'{"metadata":{"creationTimestamp":"1969-12-31T23:59:59.5Z",'
          b'"deletionTimestamp":"2024-01-01T00:00:00.000000001Z"},"spec":{},"status":{"startedAt":'
          b'"9999-12-31T23:59:59.999999999Z","completedAt":"0000-01-01T00:00:00Z"}}')
    write(t, "offset-times", b'{"metadata":{},"spec":{},"status":{"rollbackAvailabilityExpiration":'
          b'"2024-02-29T23:30:00-14:00"}}')
    write(t, "duplicate-conditions", {"metadata": {}, "spec": {"stage": "Upgrade"}, "status": {"conditions": [
        cond("UpgradeCompleted", "True", "Completed", "a", "2024-01-01T00:00:00Z"),
        cond("UpgradeCompleted", "False", "Failed", "b", "2024-01-01T00:00:01Z"),
        cond("UpgradeInProgress", "True", "InProgress", "c", "2024-01-01T00:00:02Z"),
        cond("UpgradeInProgress", "False", "InProgress", "d", "2024-01-01T00:00:03Z")]}})
    write(t, "rollback-failed", {"metadata": {"generation": -1}, "spec": {"stage": "Rollback"}, "status": {
        "conditions": [cond("RollbackCompleted", "False", "Failed", "x", "2024-01-01T00:00:00Z")]}})
    write(t, "long-message", {"metadata": {}, "spec": {}, "status": {"conditions": [
        cond("UpgradeInProgress", "True", "InProgress", "\u00e9" * 20000, "2024-01-01T00:00:00Z")]}})
    write(t, "unknown-stage", b'{"metadata":{},"spec":{"stage":"Finalize"}}')
    write(t, "null-fields", b'{"metadata":{"labels":null,"annotations":{}},"spec":{"stage":null,'
          b'"seedImageRef":{},"autoRollbackOnFailure":{}},"status":null}')
    write(t, "garbled", b'{"metadata":{},"spec":{"stage":"Upgrade"')
    write(t, "bad-time", b'{"metadata":{"creationTimestamp":"yesterday"},"spec":{}}')
    write(t, "extended-year", b'{"metadata":{"creationTimestamp":"-000001-06-01T00:00:00Z"},"spec":{}}')


def autorollback_config():
    t = "autorollback_config"
    write(t, "upstream", b'{"monitor_enabled":true,"monitor_timeout":1800,'
          b'"enabled_components":{"config":true,"postpivot":true}}')
    write(t, "disabled", b'{"monitor_timeout":600,"enabled_components":{}}')
    write(t, "empty-object", b"{}")
    write(t, "zero-timeout", b'{"monitor_enabled":true,"monitor_timeout":0}')
    write(t, "negative-timeout", b'{"monitor_timeout":-9223372036854775808}')
    write(t, "huge-timeout", b'{"monitor_timeout":9223372036854775808}')
    write(t, "float-timeout", b'{"monitor_timeout":1.5}')
    write(t, "string-values", b'{"monitor_enabled":"true","monitor_timeout":"1800"}')
    write(t, "null-components", b'{"enabled_components":null,"monitor_enabled":null}')
    write(t, "extra-keys", b'{"monitor_enabled":true,"future":[{}],"monitor_timeout":60}')
    write(t, "duplicate-key", b'{"monitor_timeout":1,"monitor_timeout":2}')
    write(t, "list", b"[true,1800,{}]")
    write(t, "null", b"null")
    write(t, "garbled", b'{"monitor_enabled":tr')
    write(t, "empty", b"")
    write(t, "whitespace-bom", b'\xef\xbb\xbf {"monitor_timeout": 5} \n')


if __name__ == "__main__":
    targets = [extra_manifests, seed_labels, seed_reconfiguration, ibu_json, autorollback_config]
    for f in targets:
        if len(sys.argv) < 2 or f.__name__ in sys.argv[1:]:
            f()
