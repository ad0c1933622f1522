//! CLI tools built into the same binary.
