//go:build amd64 && !purego

#include "textflag.h"

// Constants of shortLanesSSE: bytes '0' and 9, the multipliers that
// combine digits into pairs (10, 1 as bytes), pairs into fours (100, 1 as
// 16-bit words) and fours into eights (10000, 1), 10^-18, 10^10 and 10^18,
// and below bytes ',' and ' '.
DATA shortZero<>+0(SB)/8, $0x3030303030303030
DATA shortZero<>+8(SB)/8, $0x3030303030303030
GLOBL shortZero<>(SB), RODATA|NOPTR, $16
DATA shortNine<>+0(SB)/8, $0x0909090909090909
DATA shortNine<>+8(SB)/8, $0x0909090909090909
GLOBL shortNine<>(SB), RODATA|NOPTR, $16
DATA shortMul10<>+0(SB)/8, $0x010a010a010a010a
DATA shortMul10<>+8(SB)/8, $0x010a010a010a010a
GLOBL shortMul10<>(SB), RODATA|NOPTR, $16
DATA shortMul100<>+0(SB)/8, $0x0001006400010064
DATA shortMul100<>+8(SB)/8, $0x0001006400010064
GLOBL shortMul100<>(SB), RODATA|NOPTR, $16
DATA shortMul10000<>+0(SB)/8, $0x0001271000012710
DATA shortMul10000<>+8(SB)/8, $0x0001271000012710
GLOBL shortMul10000<>(SB), RODATA|NOPTR, $16
DATA shortScale<>+0(SB)/8, $1e-18
GLOBL shortScale<>(SB), RODATA|NOPTR, $8
DATA shortE10<>+0(SB)/8, $10000000000
GLOBL shortE10<>(SB), RODATA|NOPTR, $8
DATA shortE18<>+0(SB)/8, $1000000000000000000
GLOBL shortE18<>(SB), RODATA|NOPTR, $8
DATA shortCommas<>+0(SB)/8, $0x2c2c2c2c2c2c2c2c
DATA shortCommas<>+8(SB)/8, $0x2c2c2c2c2c2c2c2c
GLOBL shortCommas<>(SB), RODATA|NOPTR, $16
DATA shortSpaces<>+0(SB)/8, $0x2020202020202020
DATA shortSpaces<>+8(SB)/8, $0x2020202020202020
GLOBL shortSpaces<>(SB), RODATA|NOPTR, $16

// shortMasks row f (16 bytes) keeps the first f bytes of a block.
DATA shortMasks<>+0x000(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x008(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x010(SB)/8, $0x00000000000000ff
DATA shortMasks<>+0x018(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x020(SB)/8, $0x000000000000ffff
DATA shortMasks<>+0x028(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x030(SB)/8, $0x0000000000ffffff
DATA shortMasks<>+0x038(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x040(SB)/8, $0x00000000ffffffff
DATA shortMasks<>+0x048(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x050(SB)/8, $0x000000ffffffffff
DATA shortMasks<>+0x058(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x060(SB)/8, $0x0000ffffffffffff
DATA shortMasks<>+0x068(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x070(SB)/8, $0x00ffffffffffffff
DATA shortMasks<>+0x078(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x080(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x088(SB)/8, $0x0000000000000000
DATA shortMasks<>+0x090(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x098(SB)/8, $0x00000000000000ff
DATA shortMasks<>+0x0a0(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x0a8(SB)/8, $0x000000000000ffff
DATA shortMasks<>+0x0b0(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x0b8(SB)/8, $0x0000000000ffffff
DATA shortMasks<>+0x0c0(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x0c8(SB)/8, $0x00000000ffffffff
DATA shortMasks<>+0x0d0(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x0d8(SB)/8, $0x000000ffffffffff
DATA shortMasks<>+0x0e0(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x0e8(SB)/8, $0x0000ffffffffffff
DATA shortMasks<>+0x0f0(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x0f8(SB)/8, $0x00ffffffffffffff
DATA shortMasks<>+0x100(SB)/8, $0xffffffffffffffff
DATA shortMasks<>+0x108(SB)/8, $0xffffffffffffffff
GLOBL shortMasks<>(SB), RODATA|NOPTR, $272

// func cpuidECX1() uint32
TEXT ·cpuidECX1(SB), NOSPLIT, $0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, ret+0(FP)
	RET

// SHORT_STEP reads the number at P in shortRun's form into (O), moving P
// past it and O by 4, or jumps to fail leaving P and O as they were. The
// next number's place follows from the first comma (and a space after
// it) in the 32 bytes at P, and the number is read beside that, off the
// path from one number to the next: its digits must run from the point
// to that comma. It reads 32 bytes at P and uses AX, BX, CX, DX, R10,
// R11, R12, X0 to X7, and X8 to X14 as shortLanesSSE sets them. long and
// fraction are labels of its own, long that of its SHORT_LONG.
//
// Per number: R11 the comma's index, then the length to skip; CX the
// sign (0 or 1); DX the number after its sign; BX the count of digits
// after the point; AX the digit before it; R10 the mantissa, the digits
// scaled to 19 (d.ddd...ddd * 10^18).
#define SHORT_STEP(P, O, fail, long, fraction) \
	MOVOU (P), X4 \
	MOVOU 16(P), X5 \
	MOVO X4, X6 \
	PCMPEQB X13, X6 \
	PMOVMSKB X6, R11 \
	MOVO X5, X7 \
	PCMPEQB X13, X7 \
	PMOVMSKB X7, R12 \
	SHLL $16, R12 \
	ORL R12, R11 \
	BSFL R11, R11 \
	JEQ fail \
	PCMPEQB X14, X4 \
	PMOVMSKB X4, R12 \
	PCMPEQB X14, X5 \
	PMOVMSKB X5, AX \
	SHLL $16, AX \
	ORL AX, R12 \
	XORL CX, CX \
	CMPB (P), $0x2d \
	SETEQ CL \
	LEAQ (P)(CX*1), DX \
	MOVL R11, BX \
	SUBL CX, BX \
	SUBL $2, BX \
	JLE fail \
	CMPL BX, $18 \
	JHI fail \
	INCL R11 \
	BTL R11, R12 \
	ADCL $0, R11 \
	MOVBLZX (DX), AX \
	SUBL $0x30, AX \
	CMPL AX, $9 \
	JHI fail \
	CMPB 1(DX), $0x2e \
	JNE fail \
	MOVOU 2(DX), X0 \
	PSUBB X8, X0 \
	MOVO X0, X1 \
	PMINUB X9, X1 \
	PCMPEQB X0, X1 \
	PMOVMSKB X1, R10 \
	NOTL R10 \
	BSFL R10, R10 \
	MOVL $16, R12 \
	CMPL BX, R12 \
	CMOVLLS BX, R12 \
	CMPL R10, R12 \
	JNE fail \
	SHLQ $4, R12 \
	LEAQ shortMasks<>(SB), R10 \
	MOVOU (R10)(R12*1), X2 \
	PAND X2, X0 \
	PMADDUBSW X10, X0 \
	PMADDWL X11, X0 \
	PACKUSDW X0, X0 \
	PMADDWL X12, X0 \
	MOVQ X0, R10 \
	MOVL R10, R12 \
	SHRQ $32, R10 \
	IMUL3Q $100, R10, R10 \
	IMULQ shortE10<>(SB), R12 \
	ADDQ R12, R10 \
	IMULQ shortE18<>(SB), AX \
	ADDQ AX, R10 \
	CMPL BX, $16 \
	JHI long \
fraction: \
	TESTQ R10, R10 \
	JS fail \
	CVTSQ2SD R10, X3 \
	MULSD shortScale<>(SB), X3 \
	MOVQ X3, R12 \
	ANDL $0x1fffffff, R12 \
	SUBL $0x0ffffff8, R12 \
	CMPL R12, $16 \
	JLS fail \
	CVTSD2SS X3, X3 \
	MOVL X3, R12 \
	SHLL $31, CX \
	ORL CX, R12 \
	MOVL R12, (O) \
	ADDQ $4, O \
	ADDQ R11, P

// SHORT_LONG adds the 17th and 18th digits of SHORT_STEP's number (BX is
// 17 or 18) to its mantissa and goes back to its fraction label.
#define SHORT_LONG(fail, fraction, seventeen) \
	MOVBLZX 18(DX), R12 \
	SUBL $0x30, R12 \
	CMPL R12, $9 \
	JHI fail \
	LEAL (R12)(R12*4), R12 \
	ADDL R12, R12 \
	CMPL BX, $18 \
	JNE seventeen \
	MOVBLZX 19(DX), AX \
	SUBL $0x30, AX \
	CMPL AX, $9 \
	JHI fail \
	ADDL AX, R12 \
seventeen: \
	ADDQ R12, R10 \
	JMP fraction

// func shortLanesSSE(a, aEnd, aOut unsafe.Pointer, aOutEnd uintptr, b, bLast, bOut unsafe.Pointer, bOutEnd uintptr) (aNext, aOutNext, bNext, bOutNext uintptr, failed int)
//
// Two lanes of shortRun side by side (see jsonfloat_lanes_amd64.go):
// SI and R8 are lane a's number and out, DI and R13 lane b's, R9 lane a's
// end. Once lane b reached its end, lane a goes on alone.
TEXT ·shortLanesSSE(SB), NOSPLIT, $0-104
	MOVQ a+0(FP), SI
	MOVQ aEnd+8(FP), R9
	MOVQ aOut+16(FP), R8
	MOVQ b+32(FP), DI
	MOVQ bOut+48(FP), R13
	MOVOU shortZero<>(SB), X8
	MOVOU shortNine<>(SB), X9
	MOVOU shortMul10<>(SB), X10
	MOVOU shortMul100<>(SB), X11
	MOVOU shortMul10000<>(SB), X12
	MOVOU shortCommas<>(SB), X13
	MOVOU shortSpaces<>(SB), X14

loop2:
	CMPQ SI, R9
	JAE  done2
	CMPQ R8, aOutEnd+24(FP)
	JAE  done2
	CMPQ DI, bLast+40(FP)
	JHI  loopA
	CMPQ R13, bOutEnd+56(FP)
	JAE  loopA
	SHORT_STEP(SI, R8, failA, longA, fractionA)
	SHORT_STEP(DI, R13, failB, longB, fractionB)
	JMP loop2

loopA:
	CMPQ SI, R9
	JAE  done2
	CMPQ R8, aOutEnd+24(FP)
	JAE  done2
	SHORT_STEP(SI, R8, failA, longA1, fractionA1)
	JMP loopA

longA:
	SHORT_LONG(failA, fractionA, seventeenA)
longB:
	SHORT_LONG(failB, fractionB, seventeenB)
longA1:
	SHORT_LONG(failA, fractionA1, seventeenA1)

failA:
	MOVQ $1, failed+96(FP)
	JMP  out2
failB:
	MOVQ $2, failed+96(FP)
	JMP  out2
done2:
	MOVQ $0, failed+96(FP)
out2:
	MOVQ SI, aNext+64(FP)
	MOVQ R8, aOutNext+72(FP)
	MOVQ DI, bNext+80(FP)
	MOVQ R13, bOutNext+88(FP)
	RET
