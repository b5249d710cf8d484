//! Shared support for simpler's end-to-end tests.
