//! Configuration: one typed TOML tree, defaults, validation.
