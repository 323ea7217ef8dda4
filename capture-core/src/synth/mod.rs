//! Packet synthesis (work in progress by a helper).
