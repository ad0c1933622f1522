//! Admission, protocol-neutral: who may publish and play (refer, security, tokens, hooks).
//! Every transport (RTMP, HTTP-FLV, HLS viewers) asks here.

pub mod access;
