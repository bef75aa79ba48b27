//! Classifying an actor's pods into running, pending and failing.
//!
//! "Failing" follows the operator docs (seed 002): a pod whose init or regular
//! container waits in a state Kubernetes keeps retrying with back-off
//! (CrashLoopBackOff, ImagePullBackOff, …). A pod in phase `Failed` has stopped
//! retrying and is not counted at all, nor is a pod being deleted.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// Waiting reasons that mean "Kubernetes retries this with back-off".
pub const FAILING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerError",
    "CreateContainerConfigError",
    "RunContainerError",
];

/// Why one pod counts as failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub pod: String,
    pub container: String,
    pub reason: String,
    pub message: String,
}

impl Failure {
    /// True when the image cannot be pulled (as opposed to a crash).
    pub fn is_image_pull(&self) -> bool {
        matches!(
            self.reason.as_str(),
            "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull" | "InvalidImageName"
        )
    }
}

/// The state of one pod as far as the status counts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    Running,
    Pending,
    Failing(Failure),
    /// Terminated for good or being deleted: not counted.
    Gone,
}

/// Classifies one pod.
pub fn classify(pod: &Pod) -> PodState {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodState::Gone;
    }
    let Some(status) = pod.status.as_ref() else {
        return PodState::Pending;
    };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return PodState::Gone;
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in containers {
        let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(reason) = waiting.and_then(|w| w.reason.as_deref())
            && FAILING_REASONS.contains(&reason)
        {
            return PodState::Failing(Failure {
                pod: pod.name_any(),
                container: cs.name.clone(),
                reason: reason.to_owned(),
                message: waiting.and_then(|w| w.message.clone()).unwrap_or_default(),
            });
        }
    }
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if status.phase.as_deref() == Some("Running") && ready {
        PodState::Running
    } else {
        PodState::Pending
    }
}

/// Counts over all pods of a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodCounts {
    pub running: i64,
    pub pending: i64,
    pub failing: i64,
    /// Failures sorted by pod name, so messages built from them are stable.
    pub failures: Vec<Failure>,
}

/// Counts the pods.
pub fn count(pods: &[Pod]) -> PodCounts {
    let mut counts = PodCounts::default();
    for pod in pods {
        match classify(pod) {
            PodState::Running => counts.running += 1,
            PodState::Pending => counts.pending += 1,
            PodState::Failing(f) => {
                counts.failing += 1;
                counts.failures.push(f);
            }
            PodState::Gone => {}
        }
    }
    counts.failures.sort_by(|a, b| a.pod.cmp(&b.pod));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    #[test]
    fn ready_running_pod_counts_as_running() {
        let p =
            pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(classify(&p), PodState::Running);
    }

    #[test]
    fn crash_looping_runtime_counts_as_failing() {
        let p = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "asya-runtime", "ready": false, "restartCount": 4, "image": "i", "imageID": "",
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}));
        let PodState::Failing(f) = classify(&p) else {
            panic!("not failing")
        };
        assert_eq!(
            (f.container.as_str(), f.reason.as_str()),
            ("asya-runtime", "CrashLoopBackOff")
        );
        assert!(!f.is_image_pull());
    }

    #[test]
    fn image_pull_back_off_in_init_container_counts_as_failing() {
        let p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "asya-runtime-installer", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}));
        let PodState::Failing(f) = classify(&p) else {
            panic!("not failing")
        };
        assert!(f.is_image_pull());
    }

    #[test]
    fn permanently_failed_pod_is_not_counted() {
        assert_eq!(classify(&pod(json!({"phase": "Failed"}))), PodState::Gone);
        let c = count(&[
            pod(json!({"phase": "Failed"})),
            pod(json!({"phase": "Pending"})),
        ]);
        assert_eq!((c.running, c.pending, c.failing), (0, 1, 0));
    }
}
