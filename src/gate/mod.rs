//! The gate: who is calling and what they may do, decided before anything is forwarded. Inbound
//! authentication (`auth`), permissions by operation class (`policy`), rate and concurrency limits
//! (`limits`), the browser rules (`browser`: CORS, cross-origin writes, framing) and the audit event
//! (`audit`). Each check returns a typed refusal; `error` turns refusals into responses.

pub mod audit;
pub mod auth;
pub mod browser;
pub mod limits;
pub mod policy;
