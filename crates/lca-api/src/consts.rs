//! Every string of the contract: condition types, reasons, messages, annotation and label
//! keys, resource names and node paths. Tests assert against these, and users and the hub
//! match on them byte for byte, so they are defined once here.

/// Singleton names.
pub mod names {
    pub const IBU: &str = "upgrade";
    pub const SEEDGEN: &str = "seedimage";
    /// Default operator namespace (overridden by `MY_POD_NAMESPACE`).
    pub const OPERATOR_NAMESPACE: &str = "openshift-lifecycle-agent";
    /// The Service in front of the HTTPS metrics endpoint (spec §10).
    pub const METRICS_SERVICE: &str = "lifecycle-agent-controller-manager-metrics-service";
    pub const SEEDGEN_SECRET: &str = "seedgen";
    pub const SEEDGEN_SECRET_AUTH_KEY: &str = "seedAuth";
    pub const STATEROOT_SETUP_JOB: &str = "lca-prep-stateroot-setup";
    pub const PRECACHE_JOB: &str = "lca-prep-precache";
    /// Field manager for status writes.
    pub const FIELD_MANAGER: &str = "lca-rs";
    /// The cluster pull secret (`openshift-config/pull-secret`, key `.dockerconfigjson`).
    pub const PULL_SECRET: &str = "pull-secret";
    pub const PULL_SECRET_KEY: &str = ".dockerconfigjson";
    pub const OPENSHIFT_CONFIG_NAMESPACE: &str = "openshift-config";
    /// Namespace of OADP (DPAs, BackupStorageLocations).
    pub const OADP_NAMESPACE: &str = "openshift-adp";
    /// The seed imager: container name and the transient systemd unit that runs it.
    pub const IMAGER_CONTAINER: &str = "lca_image_builder";
    pub const IMAGER_UNIT: &str = "lca-generate-seed-image";
    /// Container of the operator pod whose image holds `lca-cli`.
    pub const MANAGER_CONTAINER: &str = "manager";
    pub const DEFAULT_RECERT_IMAGE: &str = "quay.io/edge-infrastructure/recert:v0";
    pub const RECERT_IMAGE_ENV: &str = "RELATED_IMAGE_RECERT_IMAGE";
    pub const SEEDGEN_SKIP_RECERT_ENV: &str = "SEEDGEN_SKIP_RECERT";
    pub const KLUSTERLETS_CRD: &str = "klusterlets.operator.open-cluster-management.io";
    pub const SRIOV_NODE_STATES_CRD: &str = "sriovnetworknodestates.sriovnetwork.openshift.io";
    pub const DPA_CRD: &str = "dataprotectionapplications.oadp.openshift.io";
    /// Minimum OADP operator version for seed generation.
    pub const OADP_MIN_VERSION: &str = "1.3.1";
    /// What the seed's pull secret is replaced with (`PullSecretEmptyData`).
    pub const SANITIZED_PULL_SECRET: &str = r#"{"auths":{"registry.connect.redhat.com":{"username":"empty","password":"empty","auth":"ZW1wdHk6ZW1wdHk=","email":""}}}"#;
}

/// IBU and SeedGenerator condition types.
pub mod condition_types {
    pub const IDLE: &str = "Idle";
    pub const PREP_IN_PROGRESS: &str = "PrepInProgress";
    pub const PREP_COMPLETED: &str = "PrepCompleted";
    pub const UPGRADE_IN_PROGRESS: &str = "UpgradeInProgress";
    pub const UPGRADE_COMPLETED: &str = "UpgradeCompleted";
    pub const ROLLBACK_IN_PROGRESS: &str = "RollbackInProgress";
    pub const ROLLBACK_COMPLETED: &str = "RollbackCompleted";
    pub const SEEDGEN_IN_PROGRESS: &str = "SeedGenInProgress";
    pub const SEEDGEN_COMPLETED: &str = "SeedGenCompleted";
}

/// Condition reasons (`ConditionReasons` of the reference, including the declared unused ones).
pub mod reasons {
    pub const IDLE: &str = "Idle";
    pub const IN_PROGRESS: &str = "InProgress";
    pub const COMPLETED: &str = "Completed";
    pub const FAILED: &str = "Failed";
    pub const ABORTING: &str = "Aborting";
    pub const ABORT_FAILED: &str = "AbortFailed";
    pub const FINALIZING: &str = "Finalizing";
    pub const FINALIZE_FAILED: &str = "FinalizeFailed";
    pub const INVALID_TRANSITION: &str = "InvalidTransition";
    pub const BLOCKED: &str = "Blocked";
    pub const CONFIGURATION_IN_PROGRESS: &str = "ConfigurationInProgress";
    pub const TIMED_OUT: &str = "TimedOut";
    pub const ABORT_COMPLETED: &str = "AbortCompleted";
    pub const FINALIZE_COMPLETED: &str = "FinalizeCompleted";
}

/// Fixed condition messages and API rejection messages.
pub mod messages {
    pub const IDLE: &str = "Idle";
    pub const IN_PROGRESS: &str = "In progress";
    pub const ABORTING: &str = "Aborting";
    pub const FINALIZING: &str = "Finalizing";
    pub const PREP_COMPLETED: &str = "Prep completed";
    pub const PREP_STAGE_COMPLETED: &str = "Prep stage completed successfully";
    pub const PREP_STAGE_COMPLETED_WITH_WARNING: &str = "Prep stage completed with extramanifests validation warning. Please check the annotation 'extra-manifest.lca.openshift.io/validation-warning' for details.";
    pub const PREP_FAILED: &str = "Prep failed";
    pub const UPGRADE_COMPLETED: &str = "Upgrade completed";
    pub const UPGRADE_FAILED: &str = "Upgrade failed";
    pub const ROLLBACK_REQUESTED: &str = "Rollback requested";
    pub const UNCONTROLLED_ROLLBACK: &str = "Uncontrolled rollback";
    pub const ROLLBACK_COMPLETED: &str = "Rollback completed";
    pub const ROLLBACK_FAILED: &str = "Rollback failed";
    pub const INITIATING_ROLLBACK: &str = "Initiating rollback";
    pub const COMPLETING_ROLLBACK: &str = "Completing rollback";
    pub const IPC_NOT_IDLE: &str = "IPC is not idle";

    pub const PREVIOUS_STAGE_NOT_SUCCEEDED: &str = "Previous stage not succeeded";
    pub const UPGRADE_NOT_STARTED_OR_FINALIZED: &str = "Upgrade not started or already finalized";
    pub const ABORT_OR_FINALIZE_NOT_ALLOWED: &str = "Abort or finalize not allowed";
    pub const IDLE_NOT_ALLOWED_ROLLBACK_FAILED: &str = "Transition to Idle not allowed - Rollback failed";
    pub const IDLE_NOT_ALLOWED_ROLLBACK_IN_PROGRESS: &str =
        "Transition to Idle not allowed - Rollback is in progress";
    pub const IDLE_NOT_ALLOWED_ROLLBACK_FIRST: &str = "Transition to Idle not allowed - Rollback first";
    pub const MANUAL_CLEANUP_SUFFIX: &str = "Perform cleanup manually then add 'lca.openshift.io/manual-cleanup-done' annotation to ibu CR to transition back to Idle";

    pub const SEEDGEN_COMPLETED: &str = "Seed Generation completed";

    pub const IBU_SINGLETON: &str = "ibu is a singleton, metadata.name must be 'upgrade'";
    pub const SEEDGEN_SINGLETON: &str = "seedgen is a singleton, metadata.name must be 'seedimage'";
    pub const SEEDGEN_SPEC_IMMUTABLE: &str = "cannot modify spec, cr must be deleted and recreated";
    pub const STAGE_TRANSITION_NOT_PERMITTED: &str = "the stage transition is not permitted. Please refer to status.validNextStages for valid transitions. If status.validNextStages is not present, it indicates that no transitions are currently allowed";

    // SeedGenerator progress (spec §8.3, §8.4); the phase is derived from some of them.
    pub const SEEDGEN_WAITING_FOR_STABLE: &str = "Waiting for system to stabilize";
    pub const SEEDGEN_STARTING: &str = "Starting seed generation";
    pub const SEEDGEN_PULLING_RECERT: &str = "Pulling recert image";
    pub const SEEDGEN_PREPARING: &str = "Preparing for seed generation";
    pub const SEEDGEN_CLEANING: &str = "Cleaning cluster resources";
    pub const SEEDGEN_LAUNCHING_IMAGER: &str = "Launching imager container";
    pub const SEEDGEN_FINALIZING: &str = "Finalizing seed generation";
    /// Prefix of the SeedGenCompleted message on failure (`<prefix>: <msg>`).
    pub const SEEDGEN_FAILED: &str = "Seed generation failed";
    pub const SEEDGEN_MISSING_SEED_AUTH: &str = "could not find seedAuth in seedgen secret";
    pub const SEEDGEN_IMAGER_STATUS_CHECK_FAILED: &str = "imager container status check failed";
    pub const SEEDGEN_MISSING_STORED_FILE: &str = "unable to recover SeedGenerator CR: Missing stored file";

    // SeedGenerator prerequisite rejections (spec §8.2).
    /// Ours (upstream's operator is down while its imager runs): a SeedGenerator created
    /// while the imager of an earlier one runs is refused instead of replacing it.
    pub const SEEDGEN_REJECT_IMAGER_RUNNING: &str = "Rejected: a seed image is already being generated (lca_image_builder is running); delete this SeedGenerator and create it again after that run ends";
    pub const SEEDGEN_REJECT_SET_DEFAULT: &str =
        "Rejected: Installed release does not support \"ostree admin set-default\" feature";
    pub const SEEDGEN_REJECT_SHARED_STORAGE: &str =
        "Rejected: Cluster must be configured with shared container storage";
    pub const SEEDGEN_REJECT_KLUSTERLET: &str =
        "Rejected: Cluster must be detached from hub prior to seed generation";
    pub const SEEDGEN_KLUSTERLET_CHECK_FAILED: &str =
        "Failure occurred during check for klusterlets CRD in system validation";
    /// Followed by the comma-separated namespaces.
    pub const SEEDGEN_REJECT_ACM_ADDONS: &str = "Rejected due to presence of ACM addon(s): ";
    pub const SEEDGEN_REJECT_DNSMASQ: &str = "Rejected due to system missing dnsmasq config required for IBU";
    pub const SEEDGEN_REJECT_SANITIZED_PULL_SECRET: &str =
        "Rejected due to invalid cluster pull-secret (previously sanitized without proper restore)";
    pub const SEEDGEN_REJECT_PVS: &str = "Rejected: Cluster must not have any Persistent Volumes configured";
    pub const SEEDGEN_REJECT_LOCAL_VOLUMES: &str =
        "Rejected: Cluster must not have any LocalVolumes configured";
    pub const SEEDGEN_REJECT_LVM_CLUSTERS: &str =
        "Rejected: Cluster must not have any LVMClusters configured";
    pub const SEEDGEN_REJECT_DPA: &str =
        "Rejected: Cluster must not have any DataProtectionApplication resources configured";
    /// Followed by `OADP_MIN_VERSION`.
    pub const SEEDGEN_REJECT_OADP_VERSION: &str = "Rejected: Cluster must have OADP version >= ";

    // Health checks (spec §6.6).
    pub const HEALTH_FAILED: &str = "one or more health checks failed";
    pub const HEALTH_CO_NOT_READY: &str = "one or more ClusterOperators not yet ready: ";
    pub const HEALTH_MCP_NOT_READY: &str = "one or more MachineConfigPools not yet ready: ";
    pub const HEALTH_CSV_NOT_READY: &str = "one or more ClusterServiceVersions not yet ready: ";
    pub const HEALTH_NO_SRIOV_STATES: &str = "no SriovNetworkNodeStates present";
    pub const HEALTH_SRIOV_NOT_READY: &str = "sriovNetworkNodeState not ready";
    pub const HEALTH_DPA_NOT_RECONCILED: &str = "dataProtectionApplication not reconciled";
    pub const HEALTH_NO_BSLS: &str = "backupsStorageLocations not yet created";
}

/// Annotations on the IBU CR.
pub mod annotations {
    pub const MANUAL_CLEANUP_DONE: &str = "lca.openshift.io/manual-cleanup-done";
    pub const TRIGGER_RECONCILE: &str = "lca.openshift.io/trigger-reconcile";
    pub const EXTRA_MANIFEST_VALIDATION_WARNING: &str = "extra-manifest.lca.openshift.io/validation-warning";
    pub const TARGET_OCP_VERSION_MANIFEST_COUNT: &str = "lca.openshift.io/target-ocp-version-manifest-count";
    pub const IMAGE_CLEANUP_ON_PREP: &str = "image-cleanup.lca.openshift.io/on-prep";
    pub const IMAGE_CLEANUP_DISK_USAGE_THRESHOLD: &str =
        "image-cleanup.lca.openshift.io/disk-usage-threshold-percent";
    pub const AUTO_ROLLBACK_INIT_MONITOR: &str = "auto-rollback-on-failure.lca.openshift.io/init-monitor";
    pub const AUTO_ROLLBACK_POST_REBOOT_CONFIG: &str =
        "auto-rollback-on-failure.lca.openshift.io/post-reboot-config";
    pub const AUTO_ROLLBACK_UPGRADE_COMPLETION: &str =
        "auto-rollback-on-failure.lca.openshift.io/upgrade-completion";
    pub const AUTO_ROLLBACK_IP_CONFIG_RUN: &str = "auto-rollback-on-failure.lca.openshift.io/ip-config-run";
    pub const RECERT_IMAGE: &str = "lca.openshift.io/recert-image";
    pub const RECERT_PULL_SECRET: &str = "lca.openshift.io/recert-pull-secret";
    pub const RECERT_IMAGE_CACHED: &str = "lca.openshift.io/recert-image-cached";
    /// The value that switches an annotated feature off.
    pub const DISABLED: &str = "Disabled";
    /// Default of `IMAGE_CLEANUP_DISK_USAGE_THRESHOLD`.
    pub const DEFAULT_DISK_USAGE_THRESHOLD_PERCENT: u8 = 50;

    // On manifests and OADP objects.
    pub const APPLY_WAVE: &str = "lca.openshift.io/apply-wave";
    pub const APPLY_TYPE: &str = "lca.openshift.io/apply-type";
    pub const APPLY_LABEL: &str = "lca.openshift.io/apply-label";
    pub const ZTP_DEPLOY_WAVE: &str = "ran.openshift.io/ztp-deploy-wave";
    pub const UPDATED_RECLAIM_POLICY: &str = "lca.openshift.io/updated-reclaim-policy";
    pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
    pub const APP_NAME: &str = "app.kubernetes.io/name";
    pub const WORKLOAD_MANAGEMENT: &str = "target.workload.openshift.io/management";
    pub const MCO_CURRENT_CONFIG: &str = "machineconfiguration.openshift.io/currentConfig";
}

/// Labels and finalizers.
pub mod labels {
    pub const TARGET_OCP_VERSION: &str = "lca.openshift.io/target-ocp-version";
    pub const BACKUP: &str = "lca.openshift.io/backup";
    pub const CLUSTER_ID: &str = "config.openshift.io/clusterID";
    pub const JOB_NAME: &str = "job-name";
    pub const STATEROOT_SETUP_FINALIZER: &str = "lca.openshift.io/stateroot-setup-finalizer";
    pub const PRECACHE_FINALIZER: &str = "lca.openshift.io/precache-finalizer";
    /// OCI labels of a seed image.
    pub const SEED_FORMAT_VERSION: &str = "com.openshift.lifecycle-agent.seed_format_version";
    pub const SEED_CLUSTER_INFO: &str = "com.openshift.lifecycle-agent.seed_cluster_info";
    /// The seed format this implementation reads and writes.
    pub const SEED_FORMAT: u32 = 4;
}

/// Paths on the node, relative to its root (the operator sees them under `--host-root`).
pub mod paths {
    pub const LCA_DIR: &str = "var/lib/lca";
    pub const SAVED_IBU: &str = "var/lib/lca/ibu.json";
    pub const WORKSPACE: &str = "var/lib/lca/workspace";
    pub const PRECACHE_STATUS: &str = "var/lib/lca/workspace/precache_status.json";
    pub const AUTO_ROLLBACK_CONFIG: &str = "var/lib/lca/autorollback_config.json";
    pub const SEEDGEN_WORKSPACE: &str = "var/lib/lca/ibu-seedgen-orch";
    pub const SEEDGEN_STORED_CR: &str = "var/lib/lca/ibu-seedgen-orch/seedgen-cr.json";
    pub const SEEDGEN_STORED_SECRET: &str = "var/lib/lca/ibu-seedgen-orch/seedgen-secret.json";
    pub const SEEDGEN_AUTH: &str = "var/lib/lca/ibu-seedgen-orch/auth.json";
    pub const SEEDGEN_STORED_PULL_SECRET: &str = "var/lib/lca/ibu-seedgen-orch/pull-secret.json";
    /// Written by the operator, read by `lca-cli create`.
    pub const SEED_CLUSTER_INFO: &str = "var/lib/lca/ibu-seedgen-orch/seed-cluster-info.json";
    /// The seed cluster's own signer keys, admin CA and kubeadmin hash while seed generation
    /// expires its certificates (written by the operator, given back and removed by
    /// `lca-cli create`; inside `/var/tmp`, which recert's container sees).
    pub const BACKUP_CERTS_DIR: &str = "var/tmp/backupCertsDir";
    /// In `BACKUP_CERTS_DIR`, when the cluster has a kubeadmin user.
    pub const KUBEADMIN_HASH_FILE: &str = "kubeadmin-password-hash.txt";
    /// Written by the operator, read by `lca-cli create` (`files::SeedImages`).
    pub const SEED_IMAGES: &str = "var/lib/lca/ibu-seedgen-orch/seed-images.json";
    /// The node's pull secret, written by the MCO from `openshift-config/pull-secret`.
    pub const KUBELET_CONFIG: &str = "var/lib/kubelet/config.json";
    /// The node's admin kubeconfig (spec §9.4): extra-manifest dry runs and the post-pivot
    /// applies act with this identity, not the operator's ServiceAccount.
    pub const ADMIN_KUBECONFIG: &str =
        "etc/kubernetes/static-pod-resources/kube-apiserver-certs/secrets/node-kubeconfigs/lb-ext.kubeconfig";
    /// Present on nodes installed with the IBU-compatible dnsmasq configuration.
    pub const DNSMASQ_CONFIG_SCRIPT: &str = "usr/local/bin/dnsmasq_config.sh";
}
