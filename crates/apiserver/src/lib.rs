//! The Kubernetes REST API over the datastore: HTTP(S) routing, discovery, authentication, authorization, admission, the generic registry and the watch cache.
//!
//! **Architecture Invariant:** the only crate that touches the datastore; it knows nothing of the scheduler, the controllers or the kubelet.
