//! The integration tests of `kd-production`, as one test binary.
//!
//! - `tls`: the store against a private PostgreSQL that accepts only TLS, through each
//!   `sslmode` and certificate setting of the URL.

mod tls;
