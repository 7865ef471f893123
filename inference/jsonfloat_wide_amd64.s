//go:build amd64 && !purego

#include "textflag.h"
#include "jsonfloat_amd64.h"

// Constants of shortWideAVX512, each broadcast to a whole register: the
// bytes 1, ' ', '-', '.', '0', 9 and ','; the digit multipliers 10, 1 (as
// bytes), 100, 1 and 10000, 1 (as 16-bit words); 10^8; 10^-15 as a
// float64; the float64 sign bit; the 29 low bits of a float64's mantissa
// (those below a float32's), a float32 midpoint in them less 4, and 8.
DATA wideOne<>+0(SB)/8, $0x0101010101010101
GLOBL wideOne<>(SB), RODATA|NOPTR, $8
DATA wideSpace<>+0(SB)/8, $0x2020202020202020
GLOBL wideSpace<>(SB), RODATA|NOPTR, $8
DATA wideMinus<>+0(SB)/8, $0x2d2d2d2d2d2d2d2d
GLOBL wideMinus<>(SB), RODATA|NOPTR, $8
DATA wideDot<>+0(SB)/8, $0x2e2e2e2e2e2e2e2e
GLOBL wideDot<>(SB), RODATA|NOPTR, $8
DATA wideZero<>+0(SB)/8, $0x3030303030303030
GLOBL wideZero<>(SB), RODATA|NOPTR, $8
DATA wideNine<>+0(SB)/8, $0x0909090909090909
GLOBL wideNine<>(SB), RODATA|NOPTR, $8
DATA wideComma<>+0(SB)/8, $0x2c2c2c2c2c2c2c2c
GLOBL wideComma<>(SB), RODATA|NOPTR, $8
DATA wideMul10<>+0(SB)/8, $0x010a010a010a010a
GLOBL wideMul10<>(SB), RODATA|NOPTR, $8
DATA wideMul100<>+0(SB)/8, $0x0001006400010064
GLOBL wideMul100<>(SB), RODATA|NOPTR, $8
DATA wideMul10000<>+0(SB)/8, $0x0001271000012710
GLOBL wideMul10000<>(SB), RODATA|NOPTR, $8
DATA wideE8<>+0(SB)/8, $100000000
GLOBL wideE8<>(SB), RODATA|NOPTR, $8
DATA wideE15<>+0(SB)/8, $1e-15
GLOBL wideE15<>(SB), RODATA|NOPTR, $8
DATA wideSign<>+0(SB)/8, $0x8000000000000000
GLOBL wideSign<>(SB), RODATA|NOPTR, $8
DATA wideLow29<>+0(SB)/8, $0x1fffffff
GLOBL wideLow29<>(SB), RODATA|NOPTR, $8
DATA wideMidLess4<>+0(SB)/8, $0x0ffffffc
GLOBL wideMidLess4<>(SB), RODATA|NOPTR, $8
DATA wideEight<>+0(SB)/8, $8
GLOBL wideEight<>(SB), RODATA|NOPTR, $8

// Constants of longWideAVX512: the bound of the error of a value read
// from its first 16 bytes, 1.1e-12 (digits dropped past the 12th after
// the point, and the roundings), and 2^-49, that of a value read whole
// relative to it (3 units of the last place of a float64, and a margin).
DATA wideCut<>+0(SB)/8, $1.1e-12
GLOBL wideCut<>(SB), RODATA|NOPTR, $8
DATA wideRel<>+0(SB)/8, $0x3ce0000000000000
GLOBL wideRel<>(SB), RODATA|NOPTR, $8

// wideDigits is the shuffle that takes a number's digits out of its 16
// bytes when it has no sign: the integer digit (byte 0), then the
// fraction digits (bytes 2 to 15; byte 1 is the point), then a zero byte
// (bit 7 set). Adding the length of the sign and space before the number
// shifts it.
DATA wideDigits<>+0(SB)/8, $0x0807060504030200
DATA wideDigits<>+8(SB)/8, $0x800f0e0d0c0b0a09
GLOBL wideDigits<>(SB), RODATA|NOPTR, $16

// Masks of the 16-bit fields of a 64-bit mask of four 16-byte lanes: the
// top bit of each, the bottom bit, the two bottom bits, and all but the
// top bit.
#define LANETOP $0x8000800080008000
#define LANEONE $0x0001000100010001
#define LANETWO $0x0003000300030003
#define LANELOW15 $0x7fff7fff7fff7fff

// LANE moves SI from a comma to the next: the lowest bit of DX, which
// holds the commas of the 64 bytes at BX, or of the next 64 bytes when DX
// has none left. It stops the group when those bytes start past R8, or
// hold no comma (no number of 64 bytes is read here).
#define LANE(refill, have) \
	TESTQ DX, DX; \
	JNZ have; \
refill: \
	ADDQ $64, BX; \
	CMPQ BX, R8; \
	JHI stopEnd; \
	PREFETCHT0 1024(BX); \
	VPCMPEQB (BX), Z25, K1; \
	KMOVQ K1, DX; \
	TESTQ DX, DX; \
	JZ stop; \
have: \
	TZCNTQ DX, AX; \
	BLSRQ DX, DX; \
	LEAQ (BX)(AX*1), SI

// SHUFFLED finds the space and sign of the four numbers of X, one per
// 16-byte lane (K1 and K2 hold their lanes, NEG all ones for the lanes of
// negative numbers), clears K7's bits of a lane whose byte P+1 is not the
// point (P: the length of the space and sign), and shuffles each lane by
// wideDigits moved on by P: Z2 then holds the digits from the left of
// the lane less '0', the first of them worth 10^15, up to the bytes past
// the lane (bytes of the space or sign, or zero). K5 holds its digits,
// K4 its commas.
#define SHUFFLED(X, NEG) \
	VPSHUFB Z16, X, Z2; \
	VPSHUFB Z17, X, Z3; \
	VPCMPEQB Z18, Z2, K1; \
	VPCMPEQB Z19, Z2, K2; \
	VPCMPEQB Z19, Z3, K3; \
	KANDQ K1, K3, K3; \
	KORQ K2, K3, K2; \
	VPMOVM2B K1, Z4; \
	VPMOVM2B K2, NEG; \
	VPADDB NEG, Z4, Z4; \
	VPSUBB Z4, Z20, Z2; \
	VPSUBB Z4, Z17, Z3; \
	VPSHUFB Z2, X, Z2; \
	VPSHUFB Z3, X, Z3; \
	VPCMPEQB Z22, Z3, K3; \
	KANDQ K3, K7, K7; \
	VPCMPEQB Z25, Z2, K4; \
	VPSUBB Z23, Z2, Z2; \
	VPCMPUB $2, Z24, Z2, K5

// TERMINATOR finds where the digits of Z2 end: R11 gets the first
// non-digit of each lane, K5 the digits before it, and R10 a bit for a
// lane with fewer than two of them.
#define TERMINATOR \
	KMOVQ K5, AX; \
	NOTQ AX; \
	ORQ R12, AX; \
	MOVQ AX, R11; \
	SUBQ R13, R11; \
	ANDNQ R11, AX, R15; \
	ANDNQ AX, R11, R11; \
	ANDNQ R14, R15, AX; \
	ORQ AX, R10; \
	KMOVQ R15, K5

// DIGITGROUPS combines the digits of Z2 before each lane's first
// non-digit (K5) in fours: 32-bit words, four per lane, into GROUPS.
#define DIGITGROUPS(GROUPS) \
	VMOVDQU8.Z Z2, K5, Z2; \
	VPMADDUBSW Z26, Z2, Z2; \
	VPMADDWD Z27, Z2, GROUPS

// PAIRS makes the float64 values of a group from the digit groups of its
// two halves (Z7, Z8) into Z9, in the order of the numbers: each 128-bit
// lane l holds the (2l)th and (2l+1)th.
#define PAIRS \
	VPACKUSDW Z8, Z7, Z7; \
	VPMADDWD Z28, Z7, Z7; \
	VPMULUDQ Z29, Z7, Z9; \
	VPSRLQ $32, Z7, Z7; \
	VPADDQ Z7, Z9, Z9; \
	VCVTUQQ2PD Z9, Z9; \
	VMULPD Z30, Z9, Z9

// STORE gives the values of Z9 the signs of their numbers (Z5 and Z6)
// and writes them to DI as float32s.
#define STORE \
	VPUNPCKLQDQ Z6, Z5, Z10; \
	VPTERNLOGQ $0x78, Z31, Z10, Z9; \
	VCVTPD2PS Z9, Y9; \
	VMOVUPS Y9, (DI); \
	ADDQ $32, DI

// GROUPSTARTR10 puts the start of the group (kept in X11) in R10, for
// EXITS.
#define GROUPSTARTR10 VMOVQ X11, R10

// ENTRY reads the arguments of a kernel: BX the first number, R8 the
// end, DI and R9 out and its end, SI the byte before the first number
// (its comma, as it were). A start past the end returns at once.
#define ENTRY \
	MOVQ p+0(FP), BX; \
	MOVQ end+8(FP), R8; \
	MOVQ out+16(FP), DI; \
	MOVQ outEnd+24(FP), R9; \
	LEAQ -1(BX), SI; \
	CMPQ BX, R8; \
	JHI done

// FIRSTBLOCK puts the commas of the 64 bytes at BX in DX.
#define FIRSTBLOCK \
	VPCMPEQB (BX), Z25, K1; \
	KMOVQ K1, DX

// GROUPSTART keeps the group's start in X11, and stops when out lacks the
// room for its eight values.
#define GROUPSTART \
	VMOVQ SI, X11; \
	LEAQ 32(DI), AX; \
	CMPQ AX, R9; \
	JHI stopEnd

// DIGITS reads the four numbers of X, one per 16-byte lane, each starting
// with at most one space and a minus sign: it leaves in GROUPS their
// digits combined in fours, in NEG all ones for the lanes of negative
// numbers, and it sets bits of R10 for a lane whose digits are not
// followed by a comma, or are fewer than two (K7 loses the bits of a
// lane without the point).
#define DIGITS(X, NEG, GROUPS) \
	SHUFFLED(X, NEG); \
	TERMINATOR; \
	KMOVQ K4, CX; \
	ANDNQ R11, CX, CX; \
	ORQ CX, R10; \
	DIGITGROUPS(GROUPS)

// DIGITSLONG is DIGITS for numbers that may be longer than their lane:
// besides a number whose digits end at a comma in the lane, it takes one
// that fills the lane with digits (the first non-digit of the shuffled
// lane is the byte past its end, at 15-P) and goes on in digits to a
// comma, which T, the 16 bytes after the lane, must show. Only the
// digits in the lane are read: 12 to 14 after the point. It leaves R11
// with bit 15 of each such lane set.
#define DIGITSLONG(X, T, NEG, GROUPS) \
	SHUFFLED(X, NEG); \
	VPCMPEQB Z25, T, K6; \
	VPSUBB Z23, T, T; \
	VPCMPUB $2, Z24, T, K3; \
	TERMINATOR; \
	KMOVQ K4, CX; \
	ANDNQ R11, CX, CX; \
	KMOVQ K1, AX; \
	MOVQ R12, R15; \
	SHRQ $1, R15; \
	ANDQ AX, R15; \
	MOVQ R12, AX; \
	SUBQ R15, AX; \
	KMOVQ K2, R15; \
	MOVQ AX, R14; \
	SHRQ $1, R14; \
	ANDQ R15, R14; \
	SUBQ R14, AX; \
	XORQ R11, AX; \
	KMOVQ K3, R11; \
	NOTQ R11; \
	ORQ R12, R11; \
	MOVQ R11, R14; \
	SUBQ R13, R14; \
	ANDNQ R11, R14, R14; \
	KMOVQ K6, R15; \
	ANDNQ R14, R15, R14; \
	ORQ R14, AX; \
	MOVQ LANELOW15, R15; \
	MOVQ CX, R11; \
	ANDQ R15, R11; \
	ADDQ R15, R11; \
	ORQ CX, R11; \
	ANDQ R12, R11; \
	MOVQ AX, CX; \
	ANDQ R15, CX; \
	ADDQ R15, CX; \
	ORQ AX, CX; \
	ANDQ R12, CX; \
	ANDQ R11, CX; \
	ORQ CX, R10; \
	MOVQ LANETWO, R14; \
	DIGITGROUPS(GROUPS)

// SETUP loads the constants that both kernels use.
#define SETUP \
	VPXORQ Z16, Z16, Z16; \
	VPBROADCASTQ wideOne<>(SB), Z17; \
	VPBROADCASTQ wideSpace<>(SB), Z18; \
	VPBROADCASTQ wideMinus<>(SB), Z19; \
	VBROADCASTI32X4 wideDigits<>(SB), Z20; \
	VPBROADCASTQ wideDot<>(SB), Z22; \
	VPBROADCASTQ wideZero<>(SB), Z23; \
	VPBROADCASTQ wideNine<>(SB), Z24; \
	VPBROADCASTQ wideComma<>(SB), Z25; \
	VPBROADCASTQ wideMul10<>(SB), Z26; \
	VPBROADCASTQ wideMul100<>(SB), Z27; \
	VPBROADCASTQ wideMul10000<>(SB), Z28; \
	VPBROADCASTQ wideE8<>(SB), Z29; \
	VPBROADCASTQ wideE15<>(SB), Z30; \
	VPBROADCASTQ wideSign<>(SB), Z31; \
	MOVQ LANETOP, R12; \
	MOVQ LANEONE, R13; \
	MOVQ LANETWO, R14

// func shortWideAVX512(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)
//
// Reads the numbers from p, eight at a time: four in the 16-byte lanes of
// Z0 (the first, third, fifth and seventh) and four in those of Z1. A
// group's digits become two 8-digit halves of a 64-bit integer v, with
// the integer digit worth 10^15, and its value is v * 10^-15 in float64.
// Three roundings (of v past 2^53, of 10^-15 and of the product) put
// that within 3 units of the last place of v / 10^15, so it is rounded to
// float32 unless it is within 4 units of a float32 midpoint: then the
// exact quotient is on the same side of every midpoint.
// It stops at the first group with a number it does not read, that needs
// a block of 64 bytes starting past end (80 bytes from end must be
// readable), or for which out lacks the room, and returns where that group starts, the out address
// after the last value, and whether a number stopped it.
TEXT ·shortWideAVX512(SB), NOSPLIT, $0-49
	ENTRY

	SETUP
	VPBROADCASTQ wideLow29<>(SB), Z14
	VPBROADCASTQ wideMidLess4<>(SB), Z13
	VPBROADCASTQ wideEight<>(SB), Z12
	FIRSTBLOCK

group:
	GROUPSTART

	VMOVDQU 1(SI), X0
	LANE(refill0, have0)
	VMOVDQU 1(SI), X1
	LANE(refill1, have1)
	VINSERTI32X4 $1, 1(SI), Z0, Z0
	LANE(refill2, have2)
	VINSERTI32X4 $1, 1(SI), Z1, Z1
	LANE(refill3, have3)
	VINSERTI32X4 $2, 1(SI), Z0, Z0
	LANE(refill4, have4)
	VINSERTI32X4 $2, 1(SI), Z1, Z1
	LANE(refill5, have5)
	VINSERTI32X4 $3, 1(SI), Z0, Z0
	LANE(refill6, have6)
	VINSERTI32X4 $3, 1(SI), Z1, Z1
	LANE(refill7, have7)

	// R10 collects the lanes' faults; X11 keeps the group's start.
	XORQ R10, R10
	KXNORQ K7, K7, K7
	DIGITS(Z0, Z5, Z7)
	DIGITS(Z1, Z6, Z8)
	KMOVQ K7, AX
	NOTQ AX
	ORQ AX, R10
	TESTQ R10, R10
	JNZ stop

	// Pairs of numbers: lane l holds the (2l)th and (2l+1)th.
	PAIRS
	VPANDQ Z14, Z9, Z10
	VPSUBQ Z13, Z10, Z10
	VPCMPUQ $2, Z12, Z10, K1
	KORTESTQ K1, K1
	JNZ stop
	STORE
	JMP group

	EXITS

// func longWideAVX512(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)
//
// shortWideAVX512 for runs that hold longer numbers, Python's 17 digits
// say: a number read from its lane alone is rounded to float32 as there,
// and one read from the first 12 to 14 digits after its point (the rest
// dropped) only when its float64 value v and v ± 1.1e-12 round to the
// same float32 (the exact value is within that), else its group stops.
// 96 bytes from end must be readable.
TEXT ·longWideAVX512(SB), NOSPLIT, $0-49
	ENTRY

	SETUP
	VPBROADCASTQ wideCut<>(SB), Z12
	VPBROADCASTQ wideRel<>(SB), Z14
	FIRSTBLOCK

group:
	GROUPSTART

	VMOVDQU 1(SI), X0
	VMOVDQU 17(SI), X9
	LANE(refill0, have0)
	VMOVDQU 1(SI), X1
	VMOVDQU 17(SI), X10
	LANE(refill1, have1)
	VINSERTI32X4 $1, 1(SI), Z0, Z0
	VINSERTI32X4 $1, 17(SI), Z9, Z9
	LANE(refill2, have2)
	VINSERTI32X4 $1, 1(SI), Z1, Z1
	VINSERTI32X4 $1, 17(SI), Z10, Z10
	LANE(refill3, have3)
	VINSERTI32X4 $2, 1(SI), Z0, Z0
	VINSERTI32X4 $2, 17(SI), Z9, Z9
	LANE(refill4, have4)
	VINSERTI32X4 $2, 1(SI), Z1, Z1
	VINSERTI32X4 $2, 17(SI), Z10, Z10
	LANE(refill5, have5)
	VINSERTI32X4 $3, 1(SI), Z0, Z0
	VINSERTI32X4 $3, 17(SI), Z9, Z9
	LANE(refill6, have6)
	VINSERTI32X4 $3, 1(SI), Z1, Z1
	VINSERTI32X4 $3, 17(SI), Z10, Z10
	LANE(refill7, have7)

	XORQ R10, R10
	KXNORQ K7, K7, K7
	DIGITSLONG(Z0, Z9, Z5, Z7)
	VMOVQ R11, X13
	DIGITSLONG(Z1, Z10, Z6, Z8)
	KMOVQ K7, AX
	NOTQ AX
	ORQ AX, R10
	TESTQ R10, R10
	JNZ stop

	// K1: the numbers (in the order of the pairs below) read from
	// their first 16 bytes only.
	VMOVQ X13, AX
	PEXTQ R12, AX, AX
	PEXTQ R12, R11, R11
	MOVQ $0x55, CX
	PDEPQ CX, AX, AX
	MOVQ $0xaa, CX
	PDEPQ CX, R11, R11
	ORQ R11, AX
	KMOVB AX, K1

	PAIRS
	VMULPD Z14, Z9, Z13
	VBLENDMPD Z12, Z13, K1, Z13
	VSUBPD Z13, Z9, Z10
	VADDPD Z13, Z9, Z13
	VCVTPD2PS Z10, Y10
	VCVTPD2PS Z13, Y13
	VPCMPD $4, Z13, Z10, K1
	KORTESTW K1, K1
	JNZ stop
	STORE
	JMP group

	EXITS

// cpuidLeaf returns the registers of CPUID leaf eax, subleaf ecx.
TEXT ·cpuidLeaf(SB), NOSPLIT, $0-24
	MOVL eax+0(FP), AX
	MOVL ecx+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// xgetbv0 returns the low half of extended control register 0: the
// register states that the operating system saves.
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, ret+0(FP)
	RET
