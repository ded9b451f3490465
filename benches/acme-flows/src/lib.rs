//! The parts of the `acme-flows` load generator that other ACME clients in this workspace
//! reuse (the interop tests drive instant-acme through them too): an HTTPS transport for
//! instant-acme over `trustbox-client`, and an http-01 responder.

#![forbid(unsafe_code)]

pub mod http01;
pub mod transport;
