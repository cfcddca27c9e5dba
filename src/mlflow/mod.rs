//! What the proxy knows of MLflow itself, beneath every layer that acts on requests: its HTTP routes,
//! which of them are MLflow's, and the class of each operation (read, write, delete, admin).

pub mod class;
pub mod graphql;
pub mod request;
pub mod routes;
