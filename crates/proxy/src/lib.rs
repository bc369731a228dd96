//! The service proxy: Service to endpoints rules, programmed with iptables-restore or nft.
//!
//! **Architecture Invariant:** talks only to the API server and to the kernel's packet filter.
