//! Serving: the accept loop (`server`) and its worker threads (`workers`), the route table (`routes`),
//! the MLflow request pipeline (`pipeline`), the proxy's own endpoints (`ops`), the embedded dashboard
//! (`dashboard`) and the `healthcheck` subcommand.

pub mod dashboard;
pub mod healthcheck;
pub mod ops;
pub mod pipeline;
pub mod routes;
pub mod server;
pub mod workers;
