//! TCP: sequence arithmetic, per-direction bounded reassembly, and the flow table.

pub mod analysis;
pub mod flow;
pub mod reassembly;
pub mod seq;

pub use flow::{Dir, FlowKey, FlowTable, RoleSource};
pub use reassembly::{Chunk, Reassembler, ReassemblyStats};
pub use seq::SeqNumber;
