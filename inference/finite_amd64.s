//go:build amd64 && !purego

#include "textflag.h"

// func nonFiniteAVX512(p unsafe.Pointer, n int) int
//
// Reads n float32 values from p, n a multiple of 64, 64 at a time: four
// ZMM loads whose exponent bits are compared with all ones. Returns the
// index of the first block of 64 that holds a NaN or an infinity, or n.
TEXT ·nonFiniteAVX512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7f800000, DX
	VPBROADCASTD DX, Z0
	XORQ AX, AX

loop:
	CMPQ AX, CX
	JAE  done
	VPANDD   (SI)(AX*4), Z0, Z1
	VPANDD   64(SI)(AX*4), Z0, Z2
	VPANDD   128(SI)(AX*4), Z0, Z3
	VPANDD   192(SI)(AX*4), Z0, Z4
	VPCMPEQD Z0, Z1, K1
	VPCMPEQD Z0, Z2, K2
	VPCMPEQD Z0, Z3, K3
	VPCMPEQD Z0, Z4, K4
	KORW     K1, K2, K1
	KORW     K3, K4, K3
	KORTESTW K1, K3
	JNE      done
	ADDQ     $64, AX
	JMP      loop

done:
	MOVQ AX, ret+16(FP)
	VZEROUPPER
	RET
