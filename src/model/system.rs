//! The system node group: a taint that keeps ordinary workloads off it,
//! and the label and tolerations that put the controllers on it.

use serde_json::{Value, json};

/// The taint on the system node group: only critical addons run there.
pub const SYSTEM_TAINT_KEY: &str = "CriticalAddonsOnly";
pub const SYSTEM_TAINT_VALUE: &str = "true";

/// The label of the system node group, which its workloads select.
pub const SYSTEM_POOL_LABEL: (&str, &str) = ("terrace.dev/pool", "system");

/// The tolerations that let a pod run on the tainted system node group.
pub fn system_tolerations() -> Value {
    json!([{ "key": SYSTEM_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule" }])
}

/// The node selector that keeps a pod on the system node group.
pub fn system_node_selector() -> Value {
    json!({ SYSTEM_POOL_LABEL.0: SYSTEM_POOL_LABEL.1 })
}
