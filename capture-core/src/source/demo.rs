//! The built-in demo scenario (work in progress by a helper).
