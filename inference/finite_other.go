//go:build !amd64 || purego

package inference

// nonFiniteBlocks scans nothing where there is no assembly (haveWide and
// haveAVX2 are false): firstNonFinite32 reads d from the start.
func nonFiniteBlocks(d []float32) int { return 0 }
