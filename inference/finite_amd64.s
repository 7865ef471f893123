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

// func nonFiniteAVX2(p unsafe.Pointer, n int) int
//
// nonFiniteAVX512 with AVX2: eight YMM loads of 8 values a block of 64.
TEXT ·nonFiniteAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7f800000, DX
	MOVQ DX, X0
	VPBROADCASTD X0, Y0
	XORQ AX, AX

loop:
	CMPQ AX, CX
	JAE  done
	VPAND    (SI)(AX*4), Y0, Y1
	VPAND    32(SI)(AX*4), Y0, Y2
	VPAND    64(SI)(AX*4), Y0, Y3
	VPAND    96(SI)(AX*4), Y0, Y4
	VPAND    128(SI)(AX*4), Y0, Y5
	VPAND    160(SI)(AX*4), Y0, Y6
	VPAND    192(SI)(AX*4), Y0, Y7
	VPAND    224(SI)(AX*4), Y0, Y8
	VPCMPEQD Y0, Y1, Y1
	VPCMPEQD Y0, Y2, Y2
	VPCMPEQD Y0, Y3, Y3
	VPCMPEQD Y0, Y4, Y4
	VPCMPEQD Y0, Y5, Y5
	VPCMPEQD Y0, Y6, Y6
	VPCMPEQD Y0, Y7, Y7
	VPCMPEQD Y0, Y8, Y8
	VPOR     Y1, Y2, Y1
	VPOR     Y3, Y4, Y3
	VPOR     Y5, Y6, Y5
	VPOR     Y7, Y8, Y7
	VPOR     Y1, Y3, Y1
	VPOR     Y5, Y7, Y5
	VPOR     Y1, Y5, Y1
	VPTEST   Y1, Y1
	JNE      done
	ADDQ     $64, AX
	JMP      loop

done:
	MOVQ AX, ret+16(FP)
	VZEROUPPER
	RET
