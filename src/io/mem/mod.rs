//! The deterministic network simulator: heap frames, simulated links with
//! impairments, virtual time and a seeded RNG.
