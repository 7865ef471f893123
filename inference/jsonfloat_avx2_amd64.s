//go:build amd64 && !purego

#include "textflag.h"
#include "jsonfloat_amd64.h"

// Constants of shortWideAVX2, 32 bytes each (memory operands of the
// kernel's instructions): the bytes 1, ' ', '-', '.', '0', 9 and ','; the
// digit multipliers 10, 1 (as bytes), 100, 1 and 10000, 1 (as 16-bit
// words); the low 32 bits of a 64-bit word; 2^52 and 10^8 and 10^-15 as
// float64s; the float64 sign bit; the 29 low bits of a float64's mantissa
// (those below a float32's) and the bounds of the window of 4 units
// around a float32 midpoint in them, less and more one.
#define BCAST32(name, v) \
	DATA name+0(SB)/8, v; \
	DATA name+8(SB)/8, v; \
	DATA name+16(SB)/8, v; \
	DATA name+24(SB)/8, v; \
	GLOBL name(SB), RODATA|NOPTR, $32

BCAST32(avxOne<>, $0x0101010101010101)
BCAST32(avxSpace<>, $0x2020202020202020)
BCAST32(avxMinus<>, $0x2d2d2d2d2d2d2d2d)
BCAST32(avxDot<>, $0x2e2e2e2e2e2e2e2e)
BCAST32(avxZero<>, $0x3030303030303030)
BCAST32(avxNine<>, $0x0909090909090909)
BCAST32(avxComma<>, $0x2c2c2c2c2c2c2c2c)
BCAST32(avxMul10<>, $0x010a010a010a010a)
BCAST32(avxMul100<>, $0x0001006400010064)
BCAST32(avxMul10000<>, $0x0001271000012710)
BCAST32(avxLow32<>, $0x00000000ffffffff)
BCAST32(avxTwo52<>, $0x4330000000000000)
BCAST32(avxE8<>, $100000000.0)
BCAST32(avxE15<>, $1e-15)
BCAST32(avxSign<>, $0x8000000000000000)
BCAST32(avxLow29<>, $0x1fffffff)
BCAST32(avxMidLo<>, $0x0ffffffb)
BCAST32(avxMidHi<>, $0x10000004)

// Constants of longWideAVX2: each lane's byte indices, 15, the bounds of
// longWideAVX512 (1.1e-12, and 2^-49 relative), and the shifts that move
// bits 15, 14, 31 and 30 of a 64-bit word to the top of the register's
// first, second, third and fourth word.
DATA avxIndex<>+0(SB)/8, $0x0706050403020100
DATA avxIndex<>+8(SB)/8, $0x0f0e0d0c0b0a0908
DATA avxIndex<>+16(SB)/8, $0x0706050403020100
DATA avxIndex<>+24(SB)/8, $0x0f0e0d0c0b0a0908
GLOBL avxIndex<>(SB), RODATA|NOPTR, $32
BCAST32(avxFifteen<>, $0x0f0f0f0f0f0f0f0f)
BCAST32(avxCut<>, $1.1e-12)
BCAST32(avxRel<>, $0x3ce0000000000000)
DATA avxFlagShifts<>+0(SB)/8, $48
DATA avxFlagShifts<>+8(SB)/8, $49
DATA avxFlagShifts<>+16(SB)/8, $32
DATA avxFlagShifts<>+24(SB)/8, $33
GLOBL avxFlagShifts<>(SB), RODATA|NOPTR, $32

// avxBits holds each bit of a byte at its place in the byte, for the
// eight bytes of a 64-bit word; avxMaskLo and avxMaskHi are the shuffles
// that spread the bits of the low and high 32 bits of a 64-bit mask (a
// word repeated across the register) over the 32 bytes they stand for,
// a byte of the mask per 8 bytes.
BCAST32(avxBits<>, $0x8040201008040201)
DATA avxMaskLo<>+0(SB)/8, $0x0000000000000000
DATA avxMaskLo<>+8(SB)/8, $0x0101010101010101
DATA avxMaskLo<>+16(SB)/8, $0x0202020202020202
DATA avxMaskLo<>+24(SB)/8, $0x0303030303030303
GLOBL avxMaskLo<>(SB), RODATA|NOPTR, $32
DATA avxMaskHi<>+0(SB)/8, $0x0404040404040404
DATA avxMaskHi<>+8(SB)/8, $0x0505050505050505
DATA avxMaskHi<>+16(SB)/8, $0x0606060606060606
DATA avxMaskHi<>+24(SB)/8, $0x0707070707070707
GLOBL avxMaskHi<>(SB), RODATA|NOPTR, $32

// avxDigits is wideDigits in both 16-byte lanes: the shuffle that takes
// a number's digits out of its 16 bytes when it has no sign (the integer
// digit, then the fraction digits after the point, then a zero byte).
DATA avxDigits<>+0(SB)/8, $0x0807060504030200
DATA avxDigits<>+8(SB)/8, $0x800f0e0d0c0b0a09
DATA avxDigits<>+16(SB)/8, $0x0807060504030200
DATA avxDigits<>+24(SB)/8, $0x800f0e0d0c0b0a09
GLOBL avxDigits<>(SB), RODATA|NOPTR, $32

// Masks of the 16-bit fields of a 64-bit mask of four 16-byte lanes, as
// in jsonfloat_wide_amd64.s.
#define LANETOP $0x8000800080008000
#define LANEONE $0x0001000100010001
#define LANETWO $0x0003000300030003

// LANE2 moves SI from a comma to the next: the lowest bit of DX, which
// holds the commas of the 64 bytes at BX, or of the next 64 bytes when DX
// has none left. It stops the group when those bytes start past R8, or
// hold no comma.
#define LANE2(refill, have) \
	TESTQ DX, DX; \
	JNZ have; \
refill: \
	ADDQ $64, BX; \
	CMPQ BX, R8; \
	JHI stopEnd; \
	PREFETCHT0 1024(BX); \
	VPCMPEQB (BX), Y15, Y8; \
	VPMOVMSKB Y8, DX; \
	VPCMPEQB 32(BX), Y15, Y8; \
	VPMOVMSKB Y8, AX; \
	SHLQ $32, AX; \
	ORQ AX, DX; \
	JZ stop; \
have: \
	TZCNTQ DX, AX; \
	BLSRQ DX, DX; \
	LEAQ (BX)(AX*1), SI

// SIGNS2 finds the space and sign of the two numbers of X, one per
// 16-byte lane: it leaves in NEG all ones for the lane of a negative
// number, and in Y4 the length P of each lane's space and sign. It uses
// Y3 and SPACE.
#define SIGNS2(X, NEG, SPACE) \
	VPXOR Y3, Y3, Y3; \
	VPSHUFB Y3, X, Y3; \
	VPSHUFB avxOne<>(SB), X, Y4; \
	VPCMPEQB avxSpace<>(SB), Y3, SPACE; \
	VPCMPEQB avxMinus<>(SB), Y3, NEG; \
	VPCMPEQB avxMinus<>(SB), Y4, Y4; \
	VPAND SPACE, Y4, Y4; \
	VPOR Y4, NEG, NEG; \
	VPADDB NEG, SPACE, Y4; \
	VPABSB Y4, Y4

// DIGITS2 shuffles each lane of X by avxDigits moved on by its P (Y4):
// it leaves in D the digits less '0' from the left of each lane, the
// first worth 10^15, up to the bytes past the lane (bytes of the space or
// sign, or zero), in DOT all ones for a lane whose byte P+1 is the point,
// in Y3 all ones for the digits of D and in Y4 for its commas.
#define DIGITS2(X, D, DOT) \
	VPADDB avxDigits<>(SB), Y4, D; \
	VPADDB avxOne<>(SB), Y4, Y4; \
	VPSHUFB D, X, D; \
	VPSHUFB Y4, X, Y4; \
	VPCMPEQB avxDot<>(SB), Y4, DOT; \
	VPCMPEQB Y15, D, Y4; \
	VPSUBB avxZero<>(SB), D, D; \
	VPMINUB avxNine<>(SB), D, Y3; \
	VPCMPEQB D, Y3, Y3

// SHUFFLED2 is SHUFFLED of jsonfloat_wide_amd64.s for the two numbers of
// X, one per 16-byte lane: SIGNS2, then DIGITS2.
#define SHUFFLED2(X, D, NEG, DOT) \
	SIGNS2(X, NEG, DOT); \
	DIGITS2(X, D, DOT)

// KEEP2 zeroes the bytes of D0 and D1 outside the digit runs of R15: its
// low 32 bits for D0, its high 32 bits for D1.
#define KEEP2(D0, D1) \
	VMOVQ R15, X3; \
	VPBROADCASTQ X3, Y3; \
	VPSHUFB avxMaskHi<>(SB), Y3, Y4; \
	VPSHUFB avxMaskLo<>(SB), Y3, Y3; \
	VPAND avxBits<>(SB), Y3, Y3; \
	VPCMPEQB avxBits<>(SB), Y3, Y3; \
	VPAND avxBits<>(SB), Y4, Y4; \
	VPCMPEQB avxBits<>(SB), Y4, Y4; \
	VPAND Y3, D0, D0; \
	VPAND Y4, D1, D1

// KEEP1 zeroes the bytes of D outside the digit runs of R15's low 32
// bits.
#define KEEP1(D) \
	VMOVQ R15, X3; \
	VPBROADCASTQ X3, Y3; \
	VPSHUFB avxMaskLo<>(SB), Y3, Y3; \
	VPAND avxBits<>(SB), Y3, Y3; \
	VPCMPEQB avxBits<>(SB), Y3, Y3; \
	VPAND Y3, D, D

// NONZERO sets bit 15 of each 16-bit field of OUT whose field in X is
// not zero, and clears the rest.
#define NONZERO(X, OUT) \
	MOVL X, OUT; \
	ANDL $0x7fff7fff, OUT; \
	ADDL $0x7fff7fff, OUT; \
	ORL X, OUT; \
	ANDL $0x80008000, OUT

// LONG2 reads the two numbers of X, one per 16-byte lane, for
// longWideAVX2; T holds the 16 bytes after each lane. A number is read
// whole when its digits end at a comma in the lane. Else it must fill
// the lane with digits (the first non-digit of the shuffled lane is at
// 15-P, past the lane's end) and go on in digits to a comma, which T must
// show; only its digits in the lane are read. It leaves the digits in D
// (the rest of the lane zeroed), NEG as SIGNS2, bit 15 and 31 of R11 set
// for the numbers read from their lane only, and it sets bits of R10 for
// a number that is neither, has fewer than two digits or no point after
// its first. It uses AX, CX, R13, R14, R15, Y3, Y4, Y8 to Y10 and Y12.
#define LONG2(X, T, D, NEG) \
	SIGNS2(X, NEG, Y12); \
	VPADDB avxIndex<>(SB), Y4, Y9; \
	VPCMPEQB avxFifteen<>(SB), Y9, Y9; \
	DIGITS2(X, D, Y12); \
	VPMOVMSKB Y12, AX; \
	NOTL AX; \
	ORL AX, R10; \
	VPCMPEQB Y15, T, Y10; \
	VPSUBB avxZero<>(SB), T, T; \
	VPMINUB avxNine<>(SB), T, Y8; \
	VPCMPEQB T, Y8, Y8; \
	VPMOVMSKB Y3, AX; \
	NOTL AX; \
	ORL $0x80008000, AX; \
	LEAL -0x10001(AX), R11; \
	ANDNL R11, AX, R15; \
	ANDNL AX, R11, R11; \
	MOVL $0x00030003, CX; \
	ANDNL CX, R15, CX; \
	ORL CX, R10; \
	VPMOVMSKB Y4, CX; \
	ANDNL R11, CX, CX; \
	VPMOVMSKB Y9, AX; \
	XORL R11, AX; \
	VPMOVMSKB Y8, R11; \
	NOTL R11; \
	ORL $0x80008000, R11; \
	LEAL -0x10001(R11), R13; \
	ANDNL R11, R13, R13; \
	VPMOVMSKB Y10, R14; \
	ANDNL R13, R14, R14; \
	ORL R14, AX; \
	NONZERO(CX, R11); \
	NONZERO(AX, R13); \
	ANDL R11, R13; \
	ORL R13, R10; \
	KEEP1(D)

// VALUES2 makes the float64 values of the four numbers whose digits are
// in Y2 (the first and third) and Y7 (the second and fourth), each digit
// run ending in zeros, into Y9 in the order of the numbers: their digits
// in fours, then the two 8-digit halves of each number (a 64-bit word of
// each, its first half in the low 32 bits), each half as a float64 (2^52
// plus it, less 2^52), then the first times 10^8 plus the second, times
// 10^-15.
#define VALUES2 \
	VPMADDUBSW avxMul10<>(SB), Y2, Y2; \
	VPMADDWD avxMul100<>(SB), Y2, Y2; \
	VPMADDUBSW avxMul10<>(SB), Y7, Y7; \
	VPMADDWD avxMul100<>(SB), Y7, Y7; \
	VPACKUSDW Y7, Y2, Y2; \
	VPMADDWD avxMul10000<>(SB), Y2, Y2; \
	VPAND avxLow32<>(SB), Y2, Y3; \
	VPSRLQ $32, Y2, Y4; \
	VPOR avxTwo52<>(SB), Y3, Y3; \
	VSUBPD avxTwo52<>(SB), Y3, Y3; \
	VPOR avxTwo52<>(SB), Y4, Y4; \
	VSUBPD avxTwo52<>(SB), Y4, Y4; \
	VFMADD231PD avxE8<>(SB), Y3, Y4; \
	VMULPD avxE15<>(SB), Y4, Y9

// STORE2 gives the values of Y9 the signs of their numbers (Y5 and Y6)
// and writes them to DI as float32s.
#define STORE2 \
	VPUNPCKLQDQ Y6, Y5, Y10; \
	VPAND avxSign<>(SB), Y10, Y10; \
	VPXOR Y10, Y9, Y9; \
	VCVTPD2PSY Y9, X9; \
	VMOVUPS X9, (DI); \
	ADDQ $16, DI

// ENTRY2 reads the arguments of a kernel: BX the first number, R8 the
// end, DI and R9 out and its end, SI the byte before the first number
// (its comma, as it were), DX the commas of the 64 bytes at BX, Y15 ','
// in every byte. A start past the end returns at once.
#define ENTRY2 \
	MOVQ p+0(FP), BX; \
	MOVQ end+8(FP), R8; \
	MOVQ out+16(FP), DI; \
	MOVQ outEnd+24(FP), R9; \
	LEAQ -1(BX), SI; \
	CMPQ BX, R8; \
	JHI done; \
	VMOVDQU avxComma<>(SB), Y15; \
	VPCMPEQB (BX), Y15, Y8; \
	VPMOVMSKB Y8, DX; \
	VPCMPEQB 32(BX), Y15, Y8; \
	VPMOVMSKB Y8, AX; \
	SHLQ $32, AX; \
	ORQ AX, DX

// GROUPSTART2 keeps the group's start in next, and stops when out lacks
// the room for its four values.
#define GROUPSTART2 \
	MOVQ SI, next+32(FP); \
	LEAQ 16(DI), AX; \
	CMPQ AX, R9; \
	JHI stopEnd

// GROUPSTARTR10 puts the start of the group (kept in next) in R10, for
// EXITS.
#define GROUPSTARTR10 MOVQ next+32(FP), R10

// func shortWideAVX2(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)
//
// shortWideAVX512 with AVX2, four numbers at a time: the first and third
// in the 16-byte lanes of Y0, the second and fourth in those of Y1. The
// 64-bit integer of a number's digits is made as a float64 from its two
// 8-digit halves, the first times 10^8 plus the second in one fused
// multiply-add, which rounds it once as a conversion of the integer
// would; the value is then that float64 times 10^-15, within 3 units of
// the last place of the quotient, and rounded to float32 unless it is
// within 4 units of a float32 midpoint.
// It stops at the first group with a number it does not read, that needs
// a block of 64 bytes starting past end (80 bytes from end must be
// readable), or for which out lacks the room, and returns where that
// group starts, the out address after the last value, and whether a
// number stopped it.
TEXT ·shortWideAVX2(SB), NOSPLIT, $0-49
	ENTRY2
	MOVQ LANETOP, R12
	MOVQ LANEONE, R13
	MOVQ LANETWO, R14

group:
	GROUPSTART2

	VMOVDQU 1(SI), X0
	LANE2(refill0, have0)
	VMOVDQU 1(SI), X1
	LANE2(refill1, have1)
	VINSERTI128 $1, 1(SI), Y0, Y0
	LANE2(refill2, have2)
	VINSERTI128 $1, 1(SI), Y1, Y1
	LANE2(refill3, have3)

	// R10: the digits of the four lanes (Y0's in the low 32 bits), CX
	// their commas; Y12 and Y13 the lanes with the point in its place.
	SHUFFLED2(Y0, Y2, Y5, Y12)
	VPMOVMSKB Y3, R10
	VPMOVMSKB Y4, CX
	SHUFFLED2(Y1, Y7, Y6, Y13)
	VPMOVMSKB Y3, AX
	SHLQ $32, AX
	ORQ AX, R10
	VPMOVMSKB Y4, AX
	SHLQ $32, AX
	ORQ AX, CX
	VPAND Y12, Y13, Y12
	VPMOVMSKB Y12, AX
	NOTL AX
	TESTL AX, AX
	JNZ stop

	// R15: the digits of each lane before its first non-digit, R11 that
	// non-digit. A lane stops the group when that is not a comma, or
	// when fewer than two digits come before it.
	MOVQ R10, AX
	NOTQ AX
	ORQ R12, AX
	MOVQ AX, R11
	SUBQ R13, R11
	ANDNQ R11, AX, R15
	ANDNQ AX, R11, R11
	ANDNQ R14, R15, AX
	ANDNQ R11, CX, CX
	ORQ CX, AX
	JNZ stop

	KEEP2(Y2, Y7)
	VALUES2

	// A value within 4 units of a float32 midpoint stops the group.
	VPAND avxLow29<>(SB), Y9, Y10
	VPCMPGTQ avxMidLo<>(SB), Y10, Y3
	VPCMPGTQ avxMidHi<>(SB), Y10, Y4
	VPANDN Y3, Y4, Y3
	VPTEST Y3, Y3
	JNZ stop

	STORE2
	JMP group

	EXITS

// func longWideAVX2(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)
//
// longWideAVX512 with AVX2, four numbers at a time as shortWideAVX2: a
// number read whole is rounded to float32, and one read from the first
// 12 to 14 digits after its point, only when its float64 value v and
// v ± 1.1e-12 round to the same float32 (for a number read whole, v ±
// v*2^-49), else its group stops. 96 bytes from end must be readable.
TEXT ·longWideAVX2(SB), NOSPLIT, $0-49
	ENTRY2

group:
	GROUPSTART2

	VMOVDQU 1(SI), X0
	VMOVDQU 17(SI), X11
	LANE2(refill0, have0)
	VMOVDQU 1(SI), X1
	VMOVDQU 17(SI), X14
	LANE2(refill1, have1)
	VINSERTI128 $1, 1(SI), Y0, Y0
	VINSERTI128 $1, 17(SI), Y11, Y11
	LANE2(refill2, have2)
	VINSERTI128 $1, 1(SI), Y1, Y1
	VINSERTI128 $1, 17(SI), Y14, Y14
	LANE2(refill3, have3)

	// R10 collects the lanes' faults, R12 and R11 the numbers read from
	// their lane only of Y0 and Y1.
	XORL R10, R10
	LONG2(Y0, Y11, Y2, Y5)
	MOVL R11, R12
	LONG2(Y1, Y14, Y7, Y6)
	TESTL R10, R10
	JNZ stop

	// Y3: the top bit of the ith 64-bit word set for the ith number
	// read from its lane only: bits 15, 14, 31 and 30 of R12 (with R11
	// moved down one, not PEXT and PDEP, which are slow on some CPUs
	// that have them), each moved to the top of its word.
	SHRL $1, R11
	ORL R11, R12
	VALUES2
	VMOVQ R12, X3
	VPBROADCASTQ X3, Y3
	VPSLLVQ avxFlagShifts<>(SB), Y3, Y3

	// v - e and v + e must round alike: e is 1.1e-12 for a number read
	// from its lane only, v*2^-49 for one read whole.
	VMULPD avxRel<>(SB), Y9, Y13
	VBLENDVPD Y3, avxCut<>(SB), Y13, Y13
	VSUBPD Y13, Y9, Y10
	VADDPD Y13, Y9, Y13
	VCVTPD2PSY Y10, X10
	VCVTPD2PSY Y13, X13
	VPCMPEQD X13, X10, X10
	VMOVMSKPS X10, AX
	CMPL AX, $15
	JNE stop
	STORE2
	JMP group

	EXITS
