//! Restart-persistence tests live in `it/`; this library is empty.
