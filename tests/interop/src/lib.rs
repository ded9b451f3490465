//! Integration and interop tests live in `tests/`: they start the real server on a free
//! loopback port and drive it over HTTPS, with real peers (openssl, curl) where one exists.
