//! The network layer, beneath everything that knows about MLflow or AWS: who is on the other end of a
//! connection and what it is doing, the clock, CIDR networks, the shared HTTP client, request bodies
//! held to a pace, the listener's TLS, percent-decoding, and which
//! worker thread runs the caller.

pub mod activity;
pub mod cidr;
pub mod client_addr;
pub mod clock;
pub mod form;
pub mod http_client;
pub mod paced_body;
pub mod tls;
pub mod worker;
