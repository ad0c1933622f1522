//! The hub: one live stream = one Source.
