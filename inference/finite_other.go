//go:build !amd64 || purego

package inference

// nonFiniteBlocks scans nothing where there is no assembly (haveWide is
// false): firstNonFinite32 reads d from the start.
func nonFiniteBlocks(d []float32) int { return 0 }
