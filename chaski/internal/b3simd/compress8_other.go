//go:build !amd64 || purego

package b3simd

const haveAVX2 = false

func compress8(cv *[64]uint32, msg *byte, stride uintptr, ctr *[16]uint32, blockLen, flags uint32) {
	panic("b3simd: no kernel on this architecture")
}
