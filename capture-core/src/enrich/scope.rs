//! What an agent keeps (`--capture-namespace`, `--capture-pod-selector`): entries with an end
//! that is a pod in one of the namespaces and carrying every label of the selector.

use super::Resolved;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureScope {
    /// Namespaces whose pods' entries are kept (any, when empty).
    pub namespaces: Vec<String>,
    /// Labels a pod must carry, all of them (any pod, when empty).
    pub pod_labels: Vec<(String, String)>,
}

impl CaptureScope {
    /// Keeps everything.
    pub fn is_all(&self) -> bool {
        self.namespaces.is_empty() && self.pod_labels.is_empty()
    }

    /// An equality-based label selector, `key=value[,key=value…]` (`==` works too).
    pub fn parse_selector(s: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for (i, part) in s.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                return Err(format!("`{s}`: selector term {} is empty", i + 1));
            }
            if part.contains("!=") || part.contains(" in ") || part.contains(" notin ") || part.starts_with('!') {
                return Err(format!(
                    "`{part}`: only equality terms are supported (key=value), e.g. app=checkout,tier=web"
                ));
            }
            let (k, v) = part
                .split_once("==")
                .or_else(|| part.split_once('='))
                .ok_or_else(|| format!("`{part}`: write key=value, e.g. app=checkout"))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(format!("`{part}`: the label key is empty"));
            }
            out.push((k.to_string(), v.to_string()));
        }
        Ok(out)
    }

    /// Whether this end is a pod the scope keeps.
    pub fn selects(&self, end: &Resolved) -> bool {
        let Some(id) = end.identity.as_deref() else {
            return false;
        };
        let ns_ok = self.namespaces.is_empty()
            || id
                .namespace
                .as_deref()
                .is_some_and(|ns| self.namespaces.iter().any(|k| k == ns));
        let labels_ok = self.pod_labels.is_empty()
            || (id.pod.is_some()
                && self
                    .pod_labels
                    .iter()
                    .all(|(k, v)| id.labels.get(k.as_str()).is_some_and(|x| **x == **v)));
        ns_ok && labels_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::index::Identity;
    use std::sync::Arc;

    fn pod(ns: &str, labels: &[(&str, &str)]) -> Resolved {
        Resolved {
            identity: Some(Arc::new(Identity {
                pod: Some("p".into()),
                namespace: Some(ns.into()),
                labels: Arc::new(labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn namespaces_and_labels_both_hold() {
        let s = CaptureScope {
            namespaces: vec!["shop".into()],
            pod_labels: CaptureScope::parse_selector("app=checkout, tier==web").unwrap(),
        };
        assert!(s.selects(&pod("shop", &[("app", "checkout"), ("tier", "web"), ("x", "y")])));
        assert!(!s.selects(&pod("shop", &[("app", "checkout")])));
        assert!(!s.selects(&pod("web", &[("app", "checkout"), ("tier", "web")])));
        assert!(!s.selects(&Resolved::default()), "an address without identity");
        assert!(CaptureScope::default().is_all());
        for bad in ["", "app", "app!=x", "=x", "a=b,,c=d", "app in (a)"] {
            assert!(CaptureScope::parse_selector(bad).is_err(), "{bad}");
        }
    }
}
