//! The node agent: node registration and lease, pod workers over CRI, probes, volumes, status and the kubelet HTTPS server.
//!
//! **Architecture Invariant:** talks only to the API server and to the container runtime.
