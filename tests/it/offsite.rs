//! Placeholder: off-site backup tests land here.
