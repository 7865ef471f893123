// What the wide kernels of jsonfloat_wide_amd64.s and
// jsonfloat_avx2_amd64.s share.

// EXITS returns where the group whose start GROUPSTARTR10 (defined by
// the including file) puts in R10 begins, DI, and whether a number
// stopped the kernel (stop) or the end of its bytes or of out
// (stopEnd); done returns before any group, at BX.
#define EXITS \
stop: \
	MOVQ $1, R11; \
	JMP exit; \
stopEnd: \
	XORQ R11, R11; \
exit: \
	GROUPSTARTR10; \
	INCQ R10; \
	MOVQ R10, next+32(FP); \
	MOVQ DI, outNext+40(FP); \
	MOVB R11, failed+48(FP); \
	VZEROUPPER; \
	RET; \
done: \
	MOVQ BX, next+32(FP); \
	MOVQ DI, outNext+40(FP); \
	MOVB $0, failed+48(FP); \
	RET
