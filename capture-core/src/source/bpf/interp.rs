//! A safe userspace interpreter for classic BPF with the kernel's semantics for what our
//! compiler emits: the same program that is attached to a live socket is run here over packets
//! read from files (and the demo), so both give the same answer.
//!
//! [`Program::new`] checks a program the way the kernel's `bpf_check_classic` does (known
//! opcodes, forward jumps that stay inside, a final `ret`, no constant division by zero, scratch
//! memory indices below 16); after that [`Program::run`] cannot index out of the program.
//! Packet loads are bounds-checked: a load outside the packet ends the run with 0, as in the
//! kernel, and so does a division by a zero X.

use super::insn::*;

/// What a program sees of one packet: the captured bytes (link header first), the length on the
/// wire (`len`), where the network header starts (`SKF_NET_OFF`) and the ethertype of the network
/// header after any VLAN tag (`SKF_AD_PROTOCOL`).
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    pub data: &'a [u8],
    pub wire_len: u32,
    pub net_offset: usize,
    pub ethertype: u16,
}

/// Why [`Program::new`] refused a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("the program is empty")]
    Empty,
    #[error("the program has {0} instructions; the kernel takes at most {BPF_MAXINSNS}")]
    TooLong(usize),
    #[error("instruction {pc}: unknown opcode {code:#06x}")]
    BadOpcode { pc: usize, code: u16 },
    #[error("instruction {pc}: jumps past the end of the program")]
    JumpOutOfRange { pc: usize },
    #[error("instruction {pc}: scratch memory index {k} is not below {BPF_MEMWORDS}")]
    MemIndex { pc: usize, k: u32 },
    #[error("instruction {pc}: division by the constant 0")]
    DivisionByZero { pc: usize },
    #[error("instruction {pc}: shift by {k} (at most 31)")]
    ShiftTooLarge { pc: usize, k: u32 },
    #[error("instruction {pc}: ancillary load {k:#x} is not one the interpreter knows (only SKF_AD_PROTOCOL)")]
    UnknownAncillary { pc: usize, k: u32 },
    #[error("the last instruction is not a `ret`")]
    NoFinalReturn,
}

/// A checked classic BPF program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Box<[Insn]>,
}

/// Every opcode the interpreter runs (the kernel's `codes[]` table, minus nothing).
fn known(code: u16) -> bool {
    matches!(
        code,
        // ALU, with K or X.
        0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 | 0x3c | 0x44 | 0x4c | 0x54 | 0x5c
            | 0x64 | 0x6c | 0x74 | 0x7c | 0x84 | 0x94 | 0x9c | 0xa4 | 0xac
            // LD: imm, abs, ind (w/h/b), mem, len.
            | 0x00 | 0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 | 0x60 | 0x80
            // LDX: imm, mem, len, msh.
            | 0x01 | 0x61 | 0x81 | 0xb1
            // ST, STX.
            | 0x02 | 0x03
            // MISC: tax, txa.
            | 0x07 | 0x87
            // RET k, ret a.
            | 0x06 | 0x16
            // JMP: ja, and jeq/jgt/jge/jset with K or X.
            | 0x05 | 0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d
    )
}

impl Program {
    /// Checks `insns` as the kernel would before attaching them.
    pub fn new(insns: Vec<Insn>) -> Result<Program, ProgramError> {
        let n = insns.len();
        if n == 0 {
            return Err(ProgramError::Empty);
        }
        if n > BPF_MAXINSNS {
            return Err(ProgramError::TooLong(n));
        }
        for (pc, i) in insns.iter().enumerate() {
            if !known(i.code) {
                return Err(ProgramError::BadOpcode { pc, code: i.code });
            }
            let (c, k) = (i.code, i.k);
            if (c == ALU | DIV | K || c == ALU | MOD | K) && k == 0 {
                return Err(ProgramError::DivisionByZero { pc });
            }
            if (c == ALU | LSH | K || c == ALU | RSH | K) && k >= 32 {
                return Err(ProgramError::ShiftTooLarge { pc, k });
            }
            if (c == LD | MEM || c == LDX | MEM || c == ST || c == STX) && k >= BPF_MEMWORDS {
                return Err(ProgramError::MemIndex { pc, k });
            }
            let out_of_range = if c == JMP | JA {
                u64::from(k) >= (n - pc - 1) as u64
            } else {
                i.class() == JMP && (pc + usize::from(i.jt) + 1 >= n || pc + usize::from(i.jf) + 1 >= n)
            };
            if out_of_range {
                return Err(ProgramError::JumpOutOfRange { pc });
            }
            let s = k as i32;
            if i.class() == LD && c & 0xe0 == ABS && (SKF_AD_OFF..0).contains(&s) && s - SKF_AD_OFF != SKF_AD_PROTOCOL {
                return Err(ProgramError::UnknownAncillary { pc, k });
            }
        }
        if insns[n - 1].class() != RET {
            return Err(ProgramError::NoFinalReturn);
        }
        Ok(Program { insns: insns.into() })
    }

    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Runs the program over one packet: the number of bytes to keep, 0 to drop it.
    pub fn run(&self, p: &PacketView<'_>) -> u32 {
        let mut a: u32 = 0;
        let mut x: u32 = 0;
        let mut mem = [0u32; BPF_MEMWORDS as usize];
        let mut pc = 0usize;
        // Every jump goes forward, so a run takes at most one step per instruction.
        while let Some(&i) = self.insns.get(pc) {
            pc += 1;
            let k = i.k;
            match i.class() {
                LD => {
                    a = match i.code & 0xe0 {
                        IMM => k,
                        LEN => p.wire_len,
                        MEM => mem[(k % BPF_MEMWORDS) as usize],
                        ABS => {
                            let s = k as i32;
                            if (SKF_AD_OFF..0).contains(&s) {
                                // Only SKF_AD_PROTOCOL passes `new`.
                                u32::from(p.ethertype)
                            } else {
                                match load(p, s, size(i.code)) {
                                    Some(v) => v,
                                    None => return 0,
                                }
                            }
                        }
                        IND => match load(p, x.wrapping_add(k) as i32, size(i.code)) {
                            Some(v) => v,
                            None => return 0,
                        },
                        _ => return 0,
                    }
                }
                LDX => {
                    x = match i.code & 0xe0 {
                        IMM => k,
                        LEN => p.wire_len,
                        MEM => mem[(k % BPF_MEMWORDS) as usize],
                        MSH => match load(p, k as i32, 1) {
                            Some(v) => 4 * (v & 0xf),
                            None => return 0,
                        },
                        _ => return 0,
                    }
                }
                ST => mem[(k % BPF_MEMWORDS) as usize] = a,
                STX => mem[(k % BPF_MEMWORDS) as usize] = x,
                ALU => {
                    let v = if i.code & X != 0 { x } else { k };
                    a = match i.code & 0xf0 {
                        ADD => a.wrapping_add(v),
                        SUB => a.wrapping_sub(v),
                        MUL => a.wrapping_mul(v),
                        DIV => match a.checked_div(v) {
                            Some(q) => q,
                            None => return 0,
                        },
                        MOD => match a.checked_rem(v) {
                            Some(r) => r,
                            None => return 0,
                        },
                        OR => a | v,
                        AND => a & v,
                        XOR => a ^ v,
                        LSH => a.wrapping_shl(v),
                        RSH => a.wrapping_shr(v),
                        NEG => a.wrapping_neg(),
                        _ => return 0,
                    }
                }
                JMP => {
                    let v = if i.code & X != 0 { x } else { k };
                    let taken = match i.code & 0xf0 {
                        JA => {
                            pc = pc.saturating_add(k as usize);
                            continue;
                        }
                        JEQ => a == v,
                        JGT => a > v,
                        JGE => a >= v,
                        JSET => a & v != 0,
                        _ => return 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET => return if i.code & RET_A != 0 { a } else { k },
                _ => {
                    if i.code & 0xf8 == TXA {
                        a = x;
                    } else {
                        x = a;
                    }
                }
            }
        }
        0
    }

    /// True when the program keeps the packet.
    pub fn matches(&self, p: &PacketView<'_>) -> bool {
        self.run(p) != 0
    }
}

fn size(code: u16) -> usize {
    match code & 0x18 {
        H => 2,
        B => 1,
        _ => 4,
    }
}

/// A big-endian load of `size` bytes at the kernel-style offset `off`: non-negative offsets from
/// the start of the frame, `SKF_NET_OFF + n` from the network header, `SKF_LL_OFF + n` from the
/// link header. Anything outside the captured bytes is `None`.
fn load(p: &PacketView<'_>, off: i32, size: usize) -> Option<u32> {
    let start = if off >= 0 {
        off as usize
    } else if off >= SKF_NET_OFF {
        p.net_offset.checked_add((off - SKF_NET_OFF) as usize)?
    } else if off >= SKF_LL_OFF {
        (off - SKF_LL_OFF) as usize
    } else {
        return None;
    };
    let bytes = p.data.get(start..start.checked_add(size)?)?;
    Some(bytes.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(data: &[u8], net_offset: usize, ethertype: u16) -> PacketView<'_> {
        PacketView {
            data,
            wire_len: data.len() as u32,
            net_offset,
            ethertype,
        }
    }

    fn prog(insns: &[Insn]) -> Program {
        Program::new(insns.to_vec()).unwrap()
    }

    #[test]
    fn checks_like_the_kernel() {
        assert_eq!(Program::new(vec![]), Err(ProgramError::Empty));
        assert_eq!(
            Program::new(vec![Insn::stmt(RET | K, 0); BPF_MAXINSNS + 1]),
            Err(ProgramError::TooLong(BPF_MAXINSNS + 1))
        );
        assert_eq!(
            Program::new(vec![Insn::stmt(0xffff, 0), Insn::stmt(RET | K, 0)]),
            Err(ProgramError::BadOpcode { pc: 0, code: 0xffff })
        );
        assert_eq!(
            Program::new(vec![Insn::jump(JMP | JEQ | K, 1, 1, 0), Insn::stmt(RET | K, 0)]),
            Err(ProgramError::JumpOutOfRange { pc: 0 })
        );
        assert_eq!(
            Program::new(vec![Insn::stmt(JMP | JA, 1), Insn::stmt(RET | K, 0)]),
            Err(ProgramError::JumpOutOfRange { pc: 0 })
        );
        assert_eq!(
            Program::new(vec![Insn::stmt(ALU | DIV | K, 0), Insn::stmt(RET | K, 0)]),
            Err(ProgramError::DivisionByZero { pc: 0 })
        );
        assert_eq!(
            Program::new(vec![Insn::stmt(ST, 16), Insn::stmt(RET | K, 0)]),
            Err(ProgramError::MemIndex { pc: 0, k: 16 })
        );
        assert_eq!(
            Program::new(vec![
                Insn::stmt(LD | W | ABS, (SKF_AD_OFF + 4) as u32),
                Insn::stmt(RET | K, 0)
            ]),
            Err(ProgramError::UnknownAncillary {
                pc: 0,
                k: (SKF_AD_OFF + 4) as u32
            })
        );
        assert_eq!(
            Program::new(vec![Insn::stmt(LD | IMM, 0)]),
            Err(ProgramError::NoFinalReturn)
        );
    }

    #[test]
    fn loads_are_relative_to_the_network_header_and_bounded() {
        // 4 bytes of "link header", then the network header.
        let data = [0xaa, 0xbb, 0xcc, 0xdd, 0x45, 0x00, 0x12, 0x34];
        let p = view(&data, 4, 0x0800);
        let ret_a = Insn::stmt(RET | RET_A, 0);
        assert_eq!(
            prog(&[Insn::stmt(LD | H | ABS, (SKF_NET_OFF + 2) as u32), ret_a]).run(&p),
            0x1234
        );
        assert_eq!(prog(&[Insn::stmt(LD | W | ABS, 0), ret_a]).run(&p), 0xaabbccdd);
        assert_eq!(
            prog(&[Insn::stmt(LD | B | ABS, SKF_LL_OFF as u32 + 1), ret_a]).run(&p),
            0xbb
        );
        assert_eq!(
            prog(&[Insn::stmt(LD | H | ABS, (SKF_AD_OFF + SKF_AD_PROTOCOL) as u32), ret_a]).run(&p),
            0x0800
        );
        // IHL 5 → X = 20; the indexed load past the end rejects even under a `ret #1` path.
        let msh = [
            Insn::stmt(LDX | B | MSH, SKF_NET_OFF as u32),
            Insn::stmt(MISC | TXA, 0),
            ret_a,
        ];
        assert_eq!(prog(&msh).run(&p), 20);
        let past = [
            Insn::stmt(LDX | B | MSH, SKF_NET_OFF as u32),
            Insn::stmt(LD | H | IND, SKF_NET_OFF as u32),
            Insn::stmt(RET | K, 1),
        ];
        assert_eq!(prog(&past).run(&p), 0);
        // Offsets below SKF_LL_OFF, a network header past the end, a word over the end.
        assert_eq!(
            prog(&[
                Insn::stmt(LD | B | ABS, (SKF_LL_OFF - 1) as u32),
                Insn::stmt(RET | K, 1)
            ])
            .run(&p),
            0
        );
        assert_eq!(
            prog(&[Insn::stmt(LD | B | ABS, SKF_NET_OFF as u32), Insn::stmt(RET | K, 1)]).run(&view(&data, 99, 0)),
            0
        );
        assert_eq!(prog(&[Insn::stmt(LD | W | ABS, 5), Insn::stmt(RET | K, 1)]).run(&p), 0);
    }

    #[test]
    fn alu_jumps_memory_and_division_by_zero() {
        let data = [0u8; 4];
        let p = view(&data, 0, 0);
        let ret_a = Insn::stmt(RET | RET_A, 0);
        // (7 * 6 - 2) / 4 % 7 = 3; then << 4 | 1 ^ 0x10 = 0x21.
        let arith = [
            Insn::stmt(LD | IMM, 7),
            Insn::stmt(ALU | MUL | K, 6),
            Insn::stmt(ALU | SUB | K, 2),
            Insn::stmt(ALU | DIV | K, 4),
            Insn::stmt(ALU | MOD | K, 7),
            Insn::stmt(ALU | LSH | K, 4),
            Insn::stmt(ALU | OR | K, 1),
            Insn::stmt(ALU | XOR | K, 0x10),
            ret_a,
        ];
        assert_eq!(prog(&arith).run(&p), 0x21);
        // X = 0: division by X rejects.
        let div_x = [
            Insn::stmt(LD | IMM, 7),
            Insn::stmt(LDX | IMM, 0),
            Insn::stmt(ALU | DIV | X, 0),
            ret_a,
        ];
        assert_eq!(prog(&div_x).run(&p), 0);
        // Scratch memory, tax/txa, ja, jset/jge.
        let flow = [
            Insn::stmt(LD | IMM, 0x30),
            Insn::stmt(ST, 3),
            Insn::stmt(LD | IMM, 0),
            Insn::stmt(LDX | MEM, 3),
            Insn::stmt(MISC | TXA, 0),
            Insn::jump(JMP | JSET | K, 0x10, 0, 3),
            Insn::jump(JMP | JGE | K, 0x30, 0, 2),
            Insn::stmt(JMP | JA, 1),
            Insn::stmt(RET | K, 0),
            Insn::stmt(RET | K, 9),
        ];
        assert_eq!(prog(&flow).run(&p), 9);
        assert_eq!(
            prog(&[Insn::stmt(LD | LEN, 0), ret_a]).run(&PacketView { wire_len: 1500, ..p }),
            1500
        );
    }
}
