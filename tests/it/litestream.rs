//! Placeholder: the Litestream coexistence test lands here.
